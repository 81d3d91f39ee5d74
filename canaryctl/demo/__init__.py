"""`canaryctl demo`: the seed's walk-through on this machine, and the environment it runs in."""
