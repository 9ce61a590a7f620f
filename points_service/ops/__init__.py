"""Operations: database backups and their restore check (``flask ops``). Others may call:"""

from points_service.ops.backup import BackupFailed, backup, restore_check

__all__ = ["BackupFailed", "backup", "restore_check"]
