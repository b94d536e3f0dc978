"""SQLModel tables; importing this package makes the metadata complete (Alembic)."""

from app.store.tables.address import AddressPoint
from app.store.tables.api_key import ApiKey, ClientApp
from app.store.tables.area import Area, AreaPiece, BoundarySet
from app.store.tables.division import Division, ServiceMove
from app.store.tables.export import ExportLease
from app.store.tables.federation import FederationForward, FederationPartner, FederationRequest
from app.store.tables.idempotency import IdempotencyRecord, RateBucket
from app.store.tables.jurisdiction import Jurisdiction
from app.store.tables.lifecycle import (
    RequestUpdate,
    Submission,
    WebhookDelivery,
    WebhookSubscription,
)
from app.store.tables.report import ReportDay, ReportMonth, ReportPending, ReportRefresh
from app.store.tables.request import ServiceRequest
from app.store.tables.service_type import ServiceAttribute, ServiceType
from app.store.tables.token import RequestToken
from app.store.tables.translation import CatalogLocale, CatalogTranslation

__all__ = [
    "AddressPoint",
    "ApiKey",
    "Area",
    "AreaPiece",
    "BoundarySet",
    "CatalogLocale",
    "CatalogTranslation",
    "ClientApp",
    "Division",
    "ExportLease",
    "FederationForward",
    "FederationPartner",
    "FederationRequest",
    "IdempotencyRecord",
    "Jurisdiction",
    "RateBucket",
    "ReportDay",
    "ReportMonth",
    "ReportPending",
    "ReportRefresh",
    "RequestToken",
    "RequestUpdate",
    "ServiceAttribute",
    "ServiceMove",
    "ServiceRequest",
    "ServiceType",
    "Submission",
    "WebhookDelivery",
    "WebhookSubscription",
]
