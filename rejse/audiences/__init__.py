"""Audiences: saved conditions over profiles with exact, real-time membership."""
