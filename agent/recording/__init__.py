"""Recordings (DESIGN.md "Recordings"): one folder per run, written while it runs and read back for replay and reports.

- format: the names, statuses and typed models (`Meta`, `Step`) of the format "deskpilot.recording/1";
- redaction: JSON safety and the masking of secret values and image data in everything written;
- files: the crash-safe writes (folder, atomic meta.json, fsynced JSONL lines, images);
- writer: `RecordingWriter`, and `mark_crashed` for a recording whose writer died;
- reader: `Recording.load`, validated, tolerant of a last line cut short by a crash;
- describe: actions in words, for reports and narratives.
"""
