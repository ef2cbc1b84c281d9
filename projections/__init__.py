"""ClickHouse projections of alarmflow's topics: DDL, the idempotent writer and analyst queries."""
