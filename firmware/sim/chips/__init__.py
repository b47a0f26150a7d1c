"""Register-level chip models that sit on the simulated I2C bus (sim.i2c.SimI2C)."""
