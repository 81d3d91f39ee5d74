"""Local stand-ins for tests and the demo: a real control plane, gateway emulators, backends."""
