"""Broker → decode → validate → batch → commit → ack, with dead letters.

Threading model (the one place it is described):

- paho's network thread (one per source: the contract's subscription and each network server's,
  all `MqttSource`s, ingest.sources) runs `MqttSource`'s callbacks. `on_message` does no I/O: it
  appends an `Inbound` to the one bounded `HandOff` and returns.
- The worker's main thread takes batches from the hand-off and decodes and validates them
  (`Decoder`, reading the registry on its own autocommit connection); one write thread writes
  a batch's rows and dead letters in one transaction (`BatchWriter`, the writer's connection)
  while the main thread decodes the next batch. Only after the commit does the main thread
  acknowledge the batch's messages to the broker in one write (`MqttSource.ack` →
  `SubscriberClient.ack_all`, queued through paho's own thread-safe packet queue). At most one
  batch is in flight; a failed write is redone on the main thread with nothing in flight.
- Backpressure: the CONNECT property ReceiveMaximum caps the unacknowledged messages the broker
  sends, and the hand-off holds at most that many; if the database stalls, acks stop, the broker
  stops sending and keeps the rest in this worker's persistent session.
"""
