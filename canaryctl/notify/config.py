"""Where notifications go: webhook channels from flags and a config file, never from annotations.

A webhook URL is a secret (Slack's carries its token in the path), and annotations are
readable by anyone who can read a Service, so annotations never hold URLs. Instead:

- `canaryctl run --notify-url-file PATH --notify-format json|slack` (or the environment
  variables `CANARYCTL_NOTIFY_URL_FILE` / `CANARYCTL_NOTIFY_FORMAT`) is the controller-wide
  channel `default`: every release event goes there. PATH is a file mounted from a Secret,
  so the URL appears in neither the pod's args nor its environment.
- `--notify-config PATH` (`CANARYCTL_NOTIFY_CONFIG`), a JSON file mounted from a Secret, names
  more channels: `{"channels": {"payments": {"urlFile": "/etc/hooks/payments", "format":
  "slack", "events": ["RolledBack", "Succeeded"]}}}` (`url` instead of `urlFile` keeps the URL
  in the config file itself; `events`, optional, limits what the channel receives).
- A canary Service opts into named channels with `api7.cloud/canary-notify: payments,oncall`:
  a channel name, mapped to a URL only by the controller's configuration.

URL files are read at start (to fail early) and again at every delivery, so a rotated Secret
takes effect without a restart. No error message, log line or repr ever contains a URL.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from canaryctl.notify.messages import EVENTS, FORMATS, Format
from canaryctl.release.config import NOTIFY  # on a canary Service: channel names, comma-separated

DEFAULT_CHANNEL = "default"
URL_FILE_ENV = "CANARYCTL_NOTIFY_URL_FILE"
FORMAT_ENV = "CANARYCTL_NOTIFY_FORMAT"
CONFIG_ENV = "CANARYCTL_NOTIFY_CONFIG"
_CHANNEL_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", re.ASCII)
_MAX_URL = 2048


class UrlSource:
    """A webhook URL, from a file (re-read on every use) or given inline; its repr hides it."""

    def __init__(self, *, path: Path | None = None, inline: str | None = None, what: str = ""):
        if (path is None) == (inline is None):
            raise ValueError("a URL comes from a file or inline, not both")
        self.path, self._inline, self.what = path, inline, what
        self.get()  # fail early, at start

    def get(self) -> str:
        """The URL now; ValueError (naming the file, never the URL) when it is unusable."""
        if self.path is None:
            assert self._inline is not None
            return _checked(self._inline, self.what)
        try:
            text = self.path.read_text()
        except OSError as error:
            raise ValueError(f"{self.what}: cannot read {self.path}: {error.strerror}") from None
        return _checked(text.strip(), f"{self.what} (file {self.path})")

    def __repr__(self) -> str:
        where = f"file {self.path}" if self.path else "inline"
        return f"UrlSource({where}, url hidden)"


@dataclass(frozen=True)
class ChannelConfig:
    """One webhook receiver and what it wants."""

    name: str
    url: UrlSource
    format: Format = "json"
    events: frozenset[str] | None = None  # None: every notified event


def _checked(url: str, what: str) -> str:
    parts = urlsplit(url)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(url) > _MAX_URL
        or any(c.isspace() for c in url)
    ):
        raise ValueError(f"{what}: not an http(s) URL of at most {_MAX_URL} characters")
    return url


def channels_from(
    url_file: str | None, fmt: str | None, config_file: str | None
) -> dict[str, ChannelConfig]:
    """Every configured channel by name (empty: notifications are off); ValueError when invalid."""
    channels: dict[str, ChannelConfig] = {}
    if fmt and fmt not in FORMATS:
        raise ValueError(f"--notify-format {fmt!r}: accepted values are {', '.join(FORMATS)}")
    if url_file:
        source = UrlSource(path=Path(url_file), what="--notify-url-file")
        channels[DEFAULT_CHANNEL] = ChannelConfig(DEFAULT_CHANNEL, source, _format(fmt))
    elif fmt:
        raise ValueError("--notify-format needs --notify-url-file")
    if config_file:
        for channel in _read_config(Path(config_file)):
            if channel.name in channels:
                raise ValueError(f"{config_file}: channel {channel.name!r} is defined twice")
            channels[channel.name] = channel
    return channels


def channels_from_env(
    url_file: str | None, fmt: str | None, config_file: str | None
) -> dict[str, ChannelConfig]:
    """`channels_from` with each missing flag taken from its environment variable."""
    return channels_from(
        url_file or os.environ.get(URL_FILE_ENV) or None,
        fmt or os.environ.get(FORMAT_ENV) or None,
        config_file or os.environ.get(CONFIG_ENV) or None,
    )


def _format(fmt: str | None) -> Format:
    return "slack" if fmt == "slack" else "json"


def _read_config(path: Path) -> list[ChannelConfig]:
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ValueError(f"--notify-config: cannot read {path}: {error.strerror}") from None
    except ValueError:
        raise ValueError(f"--notify-config: {path} is not JSON") from None
    channels = data.get("channels") if isinstance(data, dict) else None
    if not isinstance(channels, dict):
        raise ValueError(f'--notify-config: {path} needs an object "channels"')
    return [_channel(path, name, spec) for name, spec in sorted(channels.items())]


def _channel(path: Path, name: str, spec: Any) -> ChannelConfig:
    what = f"{path}: channel {name!r}"
    if not _CHANNEL_NAME.fullmatch(name):
        raise ValueError(f"{what}: names are lowercase DNS labels (a-z, 0-9, -)")
    if not isinstance(spec, dict) or set(spec) - {"url", "urlFile", "format", "events"}:
        raise ValueError(f"{what}: accepted keys are url or urlFile, format, events")
    fmt = spec.get("format", "json")
    if fmt not in FORMATS:
        raise ValueError(f"{what}: format must be one of {', '.join(FORMATS)}")
    if ("url" in spec) == ("urlFile" in spec):
        raise ValueError(f"{what}: give exactly one of url and urlFile")
    if "url" in spec:
        source = UrlSource(inline=str(spec["url"]), what=what)
    else:
        source = UrlSource(path=Path(str(spec["urlFile"])), what=what)
    return ChannelConfig(name, source, fmt, _events(what, spec.get("events")))


def _events(what: str, events: Any) -> frozenset[str] | None:
    if events is None:
        return None
    if not isinstance(events, list) or not set(events) <= set(EVENTS):
        raise ValueError(f"{what}: events must be a list of {', '.join(EVENTS)}")
    return frozenset(events)


def requested_channels(annotations: Mapping[str, str]) -> tuple[list[str], int]:
    """(the valid channel names a Service asks for, how many names were not valid)."""
    raw = annotations.get(NOTIFY, "")
    names = [part.strip() for part in raw.split(",") if part.strip()]
    valid = [name for name in names if _CHANNEL_NAME.fullmatch(name)]
    return list(dict.fromkeys(valid)), len(names) - len(valid)
