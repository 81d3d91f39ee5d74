"""Workloads the example manifests run: shipped in the controller image, so `manifests/examples`
can deploy the demo's backends with the same image (`canaryctl error-page ...`)."""
