"""Roster import (regions, organizations, members): ``importing.import_roster`` is the use case; ``rows``
reads and validates files without the database, ``plans`` resolves rows into steps against it."""
