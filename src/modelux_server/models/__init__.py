"""ORM tables, one per file. Importing this package registers all of them."""

from modelux_server.models.api_key import ApiKey
from modelux_server.models.audit_event import AuditEvent, AuditHead
from modelux_server.models.base import Base
from modelux_server.models.budget import Budget, BudgetSpend
from modelux_server.models.checkout_session import CheckoutSession
from modelux_server.models.custom_plan import CustomPlan
from modelux_server.models.dashboard_session import DashboardSession
from modelux_server.models.enterprise_invoice import EnterpriseInvoice
from modelux_server.models.idempotency_key import IdempotencyKey
from modelux_server.models.invitation import Invitation
from modelux_server.models.job_lease import JobLease
from modelux_server.models.login_attempt import LoginAttempt
from modelux_server.models.management_key import ManagementKey
from modelux_server.models.membership import Membership
from modelux_server.models.notification import Notification
from modelux_server.models.operator_action import OperatorAction
from modelux_server.models.organization import Organization
from modelux_server.models.plan_change import PlanChange
from modelux_server.models.plan_state import PlanState
from modelux_server.models.project import Project
from modelux_server.models.provider_credential import ProviderCredential
from modelux_server.models.refund import Refund
from modelux_server.models.request_log import RequestLog
from modelux_server.models.routing_config import RoutingConfig, RoutingConfigVersion
from modelux_server.models.sales_inquiry import SalesInquiry
from modelux_server.models.stripe_event import StripeEvent
from modelux_server.models.usage_counter import UsageCounter
from modelux_server.models.user import User

__all__ = [
    "ApiKey",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Budget",
    "BudgetSpend",
    "CheckoutSession",
    "CustomPlan",
    "DashboardSession",
    "EnterpriseInvoice",
    "IdempotencyKey",
    "Invitation",
    "JobLease",
    "LoginAttempt",
    "ManagementKey",
    "Membership",
    "Notification",
    "OperatorAction",
    "Organization",
    "PlanChange",
    "PlanState",
    "Project",
    "ProviderCredential",
    "Refund",
    "RoutingConfig",
    "RoutingConfigVersion",
    "SalesInquiry",
    "StripeEvent",
    "RequestLog",
    "UsageCounter",
    "User",
]
