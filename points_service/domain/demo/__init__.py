"""The demo city that ``make run`` serves: ``city.seed_demo`` seeds it (territory, organizations, members,
accounts, then ``history``'s recent past through the real ledger); ``names`` holds its name data."""
