"""A tiny deterministic PRNG (xorshift32) for the simulation: same seed, same field.

    rng = Prng(42)
    x = rng.uniform(0.0, 1.0); n = rng.gauss(0.0, 0.1)
"""


class Prng:
    def __init__(self, seed=1):
        self.s = (seed * 2654435761 + 12345) & 0xFFFFFFFF or 1
        for _ in range(4):
            self.next_u32()

    def next_u32(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def random(self):
        """Uniform in [0, 1)."""
        return self.next_u32() / 4294967296.0

    def uniform(self, a, b):
        return a + (b - a) * self.random()

    def gauss(self, mu=0.0, sigma=1.0):
        """Approximately normal (Irwin-Hall of 4 uniforms, scaled): cheap and bounded."""
        s = self.random() + self.random() + self.random() + self.random() - 2.0
        return mu + sigma * s * 1.7320508
