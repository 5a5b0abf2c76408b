from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from modelux_server.kit.schemas import Body, Update, iso
from modelux_server.models import Project

Name = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=2000)]


class ProjectCreate(Body):
    name: Name
    description: Description | None = None


class ProjectUpdate(Update):
    nullable = frozenset({"description"})

    name: Name | None = None
    description: Description | None = None


def render(p: Project) -> dict[str, Any]:
    return {
        "id": p.id,
        "object": "project",
        "name": p.name,
        "description": p.description,
        "created_at": iso(p.created_at),
    }


def render_deleted(p: Project) -> dict[str, Any]:
    return {**render(p), "deleted": True}
