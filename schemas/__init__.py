"""alarmflow's public event contract: the .avsc files, the registry, the codec and the contract checks."""
