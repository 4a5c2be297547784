"""The dual-arm tabletop scene: what is on the table, as plain data, and how to build it in pybullet.

Robot base frame (every pose this package writes is expressed in it): the origin lies on the
table top, midway between the two arm bases; x points from the robot toward the workspace, y to
the robot's left, z up. The left arm is mounted at y = +ARM_OFFSET_Y, the right arm at
y = -ARM_OFFSET_Y, both facing +x, like the AgiBot G1 dual-arm tabletop. The pybullet world frame
is this base frame, so no conversion is ever needed.

A :class:`SceneSpec` is JSON-serialisable (it is stored in the episode sidecar) and rebuilds the
exact initial state: Python floats survive a JSON round trip bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

ARM_OFFSET_Y = 0.3
TABLE_HALF_EXTENTS = (0.55, 0.75, 0.02)  # the table top slab
TABLE_CENTER_X = 0.35
TABLE_RGBA = (0.62, 0.52, 0.42, 1.0)
FLOOR_RGBA = (0.35, 0.36, 0.38, 1.0)
# Joint angles of both arms at the start of every episode: the hand above the workspace,
# pointing down. Chosen once; the same for every seed so episodes start alike.
HOME_JOINTS = (0.0, -0.25, 0.0, -2.25, 0.0, 2.0, 0.785)
FINGER_OPEN = 0.04  # metres per finger at gripper openness 1

# Named colours: instructions speak of them, so each is distinct by eye.
COLOURS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.10, 1.0),
    "green": (0.15, 0.70, 0.20, 1.0),
    "blue": (0.12, 0.30, 0.85, 1.0),
    "yellow": (0.95, 0.85, 0.10, 1.0),
    "orange": (0.95, 0.50, 0.08, 1.0),
    "purple": (0.55, 0.20, 0.75, 1.0),
    "white": (0.92, 0.92, 0.92, 1.0),
    "black": (0.08, 0.08, 0.08, 1.0),
}
SHAPES = ("cube", "cylinder", "block")


@dataclass
class ObjectSpec:
    """A movable object resting on the table; ``size`` is (x, y, z) full extents in metres."""

    name: str
    shape: str  # one of SHAPES
    colour: str  # a key of COLOURS
    size: tuple[float, float, float]
    position: tuple[float, float, float]  # centre, base frame
    yaw: float = 0.0
    mass: float = 0.1

    @property
    def label(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass
class ContainerSpec:
    """An open tray: a floor plate and four low walls."""

    position: tuple[float, float]  # centre on the table, base frame
    inner: float = 0.16  # inner side length
    wall_height: float = 0.04
    wall_thickness: float = 0.01
    colour: str = "white"


@dataclass
class MarkerSpec:
    """A flat target square drawn on the table (visual only, nothing collides with it)."""

    position: tuple[float, float]
    side: float = 0.08
    colour: str = "green"


@dataclass
class SceneSpec:
    objects: list[ObjectSpec]
    container: ContainerSpec | None = None
    marker: MarkerSpec | None = None
    home_joints: tuple[float, ...] = HOME_JOINTS
    colour_overrides: dict[str, str] = field(default_factory=dict)  # object name -> colour

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> SceneSpec:
        return cls(
            objects=[
                ObjectSpec(**{**o, "size": tuple(o["size"]), "position": tuple(o["position"])})
                for o in data["objects"]
            ],
            container=ContainerSpec(**{**data["container"], "position": tuple(data["container"]["position"])})
            if data.get("container")
            else None,
            marker=MarkerSpec(**{**data["marker"], "position": tuple(data["marker"]["position"])})
            if data.get("marker")
            else None,
            home_joints=tuple(data.get("home_joints", HOME_JOINTS)),
            colour_overrides=dict(data.get("colour_overrides", {})),
        )

    def object(self, name: str) -> ObjectSpec:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(name)


def random_object(
    rng: np.random.Generator,
    name: str,
    colour: str,
    position_xy: tuple[float, float],
    shape: str | None = None,
) -> ObjectSpec:
    """An object of a random (or given) shape and size standing on the table at ``position_xy``."""
    shape = shape or str(rng.choice(SHAPES))
    side = round(float(rng.uniform(0.04, 0.055)), 4)
    if shape == "block":
        size = (side, side, round(side * 1.6, 4))
    else:
        size = (side, side, side)
    yaw = round(float(rng.uniform(-0.4, 0.4)), 4) if shape != "cylinder" else 0.0
    return ObjectSpec(name, shape, colour, size, (position_xy[0], position_xy[1], size[2] / 2), yaw)


def build_scene(
    client: int, spec: SceneSpec, friction_scale: float = 1.0, mass_scale: float = 1.0
) -> dict[str, int]:
    """Create table, floor, fixtures and objects in a pybullet client; returns object name -> body id.

    ``friction_scale`` and ``mass_scale`` multiply every movable object's friction and mass (1 is
    the reference scene).
    """
    import pybullet as p

    half = TABLE_HALF_EXTENTS
    table_col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=client)
    table_vis = p.createVisualShape(
        p.GEOM_BOX, halfExtents=half, rgbaColor=TABLE_RGBA, physicsClientId=client
    )
    p.createMultiBody(
        0, table_col, table_vis, basePosition=(TABLE_CENTER_X, 0.0, -half[2]), physicsClientId=client
    )
    floor_vis = p.createVisualShape(
        p.GEOM_BOX, halfExtents=(3.0, 3.0, 0.01), rgbaColor=FLOOR_RGBA, physicsClientId=client
    )
    p.createMultiBody(0, -1, floor_vis, basePosition=(0.0, 0.0, -0.75), physicsClientId=client)
    if spec.container is not None:
        _build_container(client, spec.container)
    if spec.marker is not None:
        m = spec.marker
        vis = p.createVisualShape(
            p.GEOM_BOX,
            halfExtents=(m.side / 2, m.side / 2, 0.0005),
            rgbaColor=COLOURS[m.colour],
            physicsClientId=client,
        )
        p.createMultiBody(
            0, -1, vis, basePosition=(m.position[0], m.position[1], 0.0005), physicsClientId=client
        )
    bodies = {}
    for obj in spec.objects:
        colour = COLOURS[spec.colour_overrides.get(obj.name, obj.colour)]
        if obj.shape == "cylinder":
            col = p.createCollisionShape(
                p.GEOM_CYLINDER, radius=obj.size[0] / 2, height=obj.size[2], physicsClientId=client
            )
            vis = p.createVisualShape(
                p.GEOM_CYLINDER,
                radius=obj.size[0] / 2,
                length=obj.size[2],
                rgbaColor=colour,
                physicsClientId=client,
            )
        else:
            half_size = [s / 2 for s in obj.size]
            col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half_size, physicsClientId=client)
            vis = p.createVisualShape(
                p.GEOM_BOX, halfExtents=half_size, rgbaColor=colour, physicsClientId=client
            )
        orientation = p.getQuaternionFromEuler((0.0, 0.0, obj.yaw))
        body = p.createMultiBody(
            obj.mass * mass_scale,
            col,
            vis,
            basePosition=obj.position,
            baseOrientation=orientation,
            physicsClientId=client,
        )
        p.changeDynamics(
            body,
            -1,
            lateralFriction=0.8 * friction_scale,
            spinningFriction=0.001 * friction_scale,
            rollingFriction=0.0005 * friction_scale,
            physicsClientId=client,
        )
        bodies[obj.name] = body
    return bodies


def _build_container(client: int, c: ContainerSpec) -> int:
    import pybullet as p

    outer = c.inner / 2 + c.wall_thickness / 2
    t, h = c.wall_thickness / 2, c.wall_height / 2
    parts = [
        (
            (c.inner / 2 + c.wall_thickness, c.inner / 2 + c.wall_thickness, 0.003),
            (0.0, 0.0, 0.003),
        ),  # floor plate
        ((t, c.inner / 2 + c.wall_thickness, h), (outer, 0.0, h)),
        ((t, c.inner / 2 + c.wall_thickness, h), (-outer, 0.0, h)),
        ((c.inner / 2, t, h), (0.0, outer, h)),
        ((c.inner / 2, t, h), (0.0, -outer, h)),
    ]
    rgba = COLOURS[c.colour]
    rgba = (rgba[0] * 0.8, rgba[1] * 0.8, rgba[2] * 0.85, 1.0)
    col = p.createCollisionShapeArray(
        [p.GEOM_BOX] * len(parts),
        halfExtents=[list(e) for e, _ in parts],
        collisionFramePositions=[list(o) for _, o in parts],
        physicsClientId=client,
    )
    vis = p.createVisualShapeArray(
        [p.GEOM_BOX] * len(parts),
        halfExtents=[list(e) for e, _ in parts],
        visualFramePositions=[list(o) for _, o in parts],
        rgbaColors=[list(rgba)] * len(parts),
        physicsClientId=client,
    )
    return p.createMultiBody(
        0, col, vis, basePosition=(c.position[0], c.position[1], 0.0), physicsClientId=client
    )
