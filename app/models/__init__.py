"""SQLModel tables; importing this package makes the metadata complete (Alembic)."""

from app.models.api_key import ApiKey, ClientApp
from app.models.area import Area, AreaPiece, BoundarySet
from app.models.federation import FederationForward, FederationPartner, FederationRequest
from app.models.idempotency import IdempotencyRecord, RateBucket
from app.models.jurisdiction import Jurisdiction
from app.models.lifecycle import RequestUpdate, Submission, WebhookDelivery, WebhookSubscription
from app.models.request import ServiceRequest
from app.models.service_type import ServiceAttribute, ServiceType
from app.models.token import RequestToken

__all__ = [
    "ApiKey",
    "Area",
    "AreaPiece",
    "BoundarySet",
    "ClientApp",
    "FederationForward",
    "FederationPartner",
    "FederationRequest",
    "IdempotencyRecord",
    "Jurisdiction",
    "RateBucket",
    "RequestToken",
    "RequestUpdate",
    "ServiceAttribute",
    "ServiceRequest",
    "ServiceType",
    "Submission",
    "WebhookDelivery",
    "WebhookSubscription",
]
