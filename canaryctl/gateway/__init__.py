"""Gateway backends behind one backend-neutral interface (see `model` and `base`)."""
