"""alarmflow streams: the Faust app, its agents, the CLI and the domain logic."""
