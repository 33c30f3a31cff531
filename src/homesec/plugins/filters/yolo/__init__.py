"""The `yolo` object filter (YOLOX and Ultralytics ONNX models on ONNX Runtime).

Importing this package registers the plugin; the entry point `filter.yolo` points here.
"""

from homesec.plugins.filters.yolo import plugin as plugin
