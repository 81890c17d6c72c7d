"""Data sets: one module per source, the physiological simulator, the packed cache, the torch Dataset."""
