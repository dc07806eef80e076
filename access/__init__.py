"""Who may do what: broker accounts of devices, gateways and services; API keys and roles.

    credentials.py   secrets and their hashes; broker accounts in the registry (issue, rotate, revoke)
    acl.py           what each account may publish and subscribe to, computed from the registry
    dynsec.py        a client of Mosquitto's dynamic-security plugin ($CONTROL/dynamic-security/v1)
    sync.py          make the broker hold exactly the registry's accounts; the restore file
    api_keys.py      API keys (hashed at rest) and the principal a key stands for
    policy.py        the API roles and what each may do

Secrets are generated here, shown once, and never stored, logged or returned again.
"""
