"""What a pack would do: ordered, de-duplicated work items for one environment and platform.

:func:`plan_lock` is the one decision path: ``inspect`` prints the :class:`PackPlans` it
returns and ``pack`` executes them (:mod:`pixi_pack_src.pack`), so nothing is decided twice.

- :mod:`.model`: the typed records (:class:`PackPlans`, :class:`PackPlan`, :class:`PlanItem`,
  :class:`SourceBuild`, :class:`PlanTotals`, :class:`Refusal`, :class:`InspectOptions`);
- :mod:`.planner`: lock -> plans (:func:`plan_lock`, :func:`make_plans`, platform selection);
- :mod:`.items`: what is done with each lock entry (download, copy, build, skip);
- :mod:`.builds`: the ``pixi build`` invocations, as the build engine makes them;
- :mod:`.checks`: every refusal and warning knowable before any request;
- :mod:`.document`: the ``inspect --json`` document (docs/json.md).

Actions: ``download`` (conda package or wheel from a URL), ``copy`` (a local ``.conda`` or
wheel), ``build-conda`` (a ``conda_source`` entry, built by ``pixi build``), ``build-wheel`` (an
sdist, git checkout or source tree, built into a wheel), ``skip`` (with a reason), and with
``--base`` ``from-base`` (the base of a delta pack has the file: neither fetched nor built;
:mod:`pixi_pack_src.delta.plan`).
"""

from pixi_pack_src.plan.checks import lock_refusal
from pixi_pack_src.plan.document import JSON_VERSION
from pixi_pack_src.plan.model import (
    ACTIONS,
    FROM_BASE,
    Action,
    InspectOptions,
    ItemKind,
    PackPlan,
    PackPlans,
    PlanItem,
    PlanTotals,
    Refusal,
    SourceBuild,
)
from pixi_pack_src.plan.planner import make_plan, make_plans, plan_lock, select_platforms

__all__ = [
    "ACTIONS",
    "FROM_BASE",
    "JSON_VERSION",
    "Action",
    "InspectOptions",
    "ItemKind",
    "PackPlan",
    "PackPlans",
    "PlanItem",
    "PlanTotals",
    "Refusal",
    "SourceBuild",
    "lock_refusal",
    "make_plan",
    "make_plans",
    "plan_lock",
    "select_platforms",
]
