"""Small fakes of each plugin kind for pipeline tests (importing `plugins` registers them)."""
