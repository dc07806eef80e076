"""The two reference subscribers of the benchmark, each run as its own process (as ingest
workers are), printing one JSON line: {"count", "seconds"} from first to last message.

    python -m bench.subscribers bare  --mqtt-url URL --count N
    python -m bench.subscribers naive --mqtt-url URL --count N --database-url URL

- bare: paho-mqtt 2.x, MQTT v5, one member of a shared subscription, QoS 1 with paho's
  automatic acks, counting only: the ceiling for any Python subscriber on this machine.
- naive: the same, and in the callback json.loads, one INSERT and one commit per message.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from devices.contract import subscription_filter
from pilotlab.settings import MqttEndpoint

_NAIVE_INSERT = (
    "INSERT INTO telemetry (device_id, seq, device_time, ingest_time, channel, size_bytes, battery_pct) "
    "VALUES (%s, %s, %s::timestamptz, now(), 'telemetry', %s, %s) ON CONFLICT DO NOTHING"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["bare", "naive"])
    parser.add_argument("--mqtt-url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--group", default="reference")
    parser.add_argument("--filter", default=subscription_filter(), help="topic filter (default: contract v1's)")
    args = parser.parse_args()
    endpoint = MqttEndpoint(args.mqtt_url)
    conn = psycopg.connect(args.database_url) if args.mode == "naive" else None

    count = 0
    first = last = 0.0
    cpu = [0.0, 0.0]
    done = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal count, first, last
        if conn is not None:
            body = json.loads(message.payload)
            ts = body["ts"]
            device_time = datetime.fromtimestamp(ts / 1000, UTC) if isinstance(ts, int | float) else ts
            conn.execute(_NAIVE_INSERT, (message.topic.split("/")[3], body["seq"], device_time,
                                         len(message.payload), body.get("battery_pct")))
            conn.commit()
        count += 1
        if count == 1:
            first = time.perf_counter()
            cpu[0] = time.process_time()
        if count == args.count:
            last = time.perf_counter()
            cpu[1] = time.process_time()
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.ReceiveMaximum = 1000
    subscribed = threading.Event()
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = on_message
    client.connect(endpoint.host, endpoint.port, properties=props)
    client.subscribe(f"$share/{args.group}/{args.filter}", options=SubscribeOptions(qos=1))
    client.loop_start()
    if not subscribed.wait(10):
        sys.exit("subscription not granted")
    print("subscribed", flush=True)
    finished = done.wait(600)
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"count": count, "seconds": last - first if finished else None,
                      "cpu_us_per_msg": 1e6 * (cpu[1] - cpu[0]) / max(1, count - 1)}), flush=True)


if __name__ == "__main__":
    main()
