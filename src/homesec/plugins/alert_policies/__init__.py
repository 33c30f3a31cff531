"""Alert policies: decide whether a clip is worth a notification."""
