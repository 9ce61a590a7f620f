"""Photo evidence a member uploads for his self-reports (自主上报的照片佐证).

Others may call: ``store_evidence`` (check and keep an upload), ``evidence_file`` (the stored file behind a
name, for serving), ``check_evidence_owner`` (a record's evidence may cite only the actor's own uploads) and
``upload_name`` (the stored name an evidence link points at, if any)."""

from points_service.domain.uploads.evidence import (
    DAILY_LIMIT,
    LIMITS,
    check_evidence_owner,
    evidence_file,
    store_evidence,
    upload_name,
)

__all__ = ["DAILY_LIMIT", "LIMITS", "check_evidence_owner", "evidence_file", "store_evidence", "upload_name"]
