"""`rtsp` source: IP cameras watched for motion, clips copied from their main stream.

Importing the package registers the plugin. Modules: `config` (settings), `plugin` (the
source, its reconnecting supervisor and its motion decisions), `stream` (one ffmpeg per
connection), `motion` (detection and clip boundaries), `recorder` (pre-roll buffer and
clips), `clipfile` (the finished MP4), `hardware` (hardware decoding and its fall-back).
"""

from homesec.plugins.sources.rtsp.config import MotionConfig, RTSPSourceConfig
from homesec.plugins.sources.rtsp.plugin import RTSPSource

__all__ = ["MotionConfig", "RTSPSource", "RTSPSourceConfig"]
