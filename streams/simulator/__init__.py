"""The district simulator: a seeded, deterministic stream of a street's upstream events (see README.md).

Pure generation: ``streams.simulator.generator.generate``; files: ``streams.simulator.jsonl.write_jsonl``;
Kafka: ``streams.simulator.publisher.publish``; the command: ``streams.simulator.cli.simulate``.
Nothing is imported here, so the pure modules never pull in aiokafka.
"""
