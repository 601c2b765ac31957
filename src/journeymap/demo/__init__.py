"""The demo world: a seeded B2B SaaS world with known channel effects."""

from journeymap.demo.world import World, generate_world, write_world

__all__ = ["World", "generate_world", "write_world"]
