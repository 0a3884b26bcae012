"""Facts about one profile for branch conditions: the audiences' facts (`rejse.audiences.facts`),
so a branch sees what an audience sees (live membership, the decayed score, customer value)."""

from __future__ import annotations

from rejse.audiences.facts import DatabaseFacts, load_facts

ProfileFacts = DatabaseFacts

__all__ = ["DatabaseFacts", "ProfileFacts", "load_facts"]
