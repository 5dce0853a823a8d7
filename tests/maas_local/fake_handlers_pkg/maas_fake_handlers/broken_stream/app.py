"""A streaming function whose web app cannot load: every request to it fails."""

raise RuntimeError("this app does not load")
