"""The child process of an iotcore EmbeddedBroker: `python -m pilotlab.embedded.iotcore_broker`.

rumqttd has no shutdown API, so it runs in a process of its own that the parent stops with
SIGTERM (the default action ends it at once; there is nothing to save). Logging is quiet: rumqttd
reports every packet through tracing spans, which reach Python logging at INFO or even ERROR.
"""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pilotlab.embedded.iotcore_broker")
    parser.add_argument("--config", required=True, help="rumqttd TOML config")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    debugging = args.log_level.upper() == "DEBUG"
    logging.getLogger("rumqttd").setLevel(logging.DEBUG if debugging else logging.CRITICAL)

    from iotcore.iotcore import IotCoreBroker

    IotCoreBroker(config_path=args.config).run_forever()


if __name__ == "__main__":
    main()
