"""Factors: point-in-time scores per (date, member) computed from reference data and prices (pure)."""

from __future__ import annotations

from screener.factors.supply import (
    COMPONENT_WEIGHTS,
    CORE_STAGES,
    FACTOR_COLUMNS,
    china_dependency,
    country_risk,
    criticality_components,
    element_criticality,
    explain_supply,
    integration,
    jurisdiction_risk,
    supply_factors,
    supply_risk_exposure,
)

__all__ = [
    "COMPONENT_WEIGHTS",
    "CORE_STAGES",
    "FACTOR_COLUMNS",
    "china_dependency",
    "country_risk",
    "criticality_components",
    "element_criticality",
    "explain_supply",
    "integration",
    "jurisdiction_risk",
    "supply_factors",
    "supply_risk_exposure",
]
