"""The application: the ``fedtwin`` CLI and its commands; the only fedtwin code importing flows/."""
