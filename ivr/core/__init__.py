"""The flow model and the engine: YAML source positions, loading and validation, templates,
schedules, outcomes, TwiML rendering and the state machine. No I/O beyond the loader reading files."""
