"""SQLModel tables; importing this package makes the metadata complete (Alembic)."""

from app.models.api_key import ApiKey
from app.models.area import Area, BoundarySet
from app.models.jurisdiction import Jurisdiction
from app.models.request import ServiceRequest
from app.models.service_type import ServiceAttribute, ServiceType
from app.models.token import RequestToken

__all__ = [
    "ApiKey",
    "Area",
    "BoundarySet",
    "Jurisdiction",
    "RequestToken",
    "ServiceAttribute",
    "ServiceRequest",
    "ServiceType",
]
