"""canaryctl: canary releases on API7 Cloud / Apache APISIX driven by Service annotations."""

__version__ = "0.1.0"
