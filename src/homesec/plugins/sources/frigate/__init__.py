"""`frigate` source: clips of a Frigate NVR's review items. Importing it registers the plugin.

Modules: `plugin` (the source: MQTT, fetching, catch-up), `api` (Frigate's payloads and HTTP
API), `ledger` (the items taken, on disk).
"""

from homesec.plugins.sources.frigate.plugin import FrigateSource, FrigateSourceConfig

__all__ = ["FrigateSource", "FrigateSourceConfig"]
