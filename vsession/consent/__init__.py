"""Recording consent: the state machine that alone can open the recorder's gate."""
