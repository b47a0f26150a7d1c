"""What the world is at one instant, in SI units: the field model writes it, chip models read it.

    truth = Truth()
    field.update(truth, epoch_s)        # sim.field.FieldModel
    SHT4xModel(truth)                   # reads truth.air_c, truth.rh_pct on each measurement

Spectral channels follow the AS7341: index 0..7 = F1..F8 (415, 445, 480, 515, 555, 590,
630, 680 nm), 8 = CLEAR, 9 = NIR (910 nm). Red = F8, green = F5, NIR = index 9.
"""

F1, F2, F3, F4, F5, F6, F7, F8, CLEAR, NIR = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
RED = F8
GREEN = F5


class Truth:
    def __init__(self):
        self.t = 0  # UTC epoch seconds
        self.sun_zenith_deg = 90.0
        self.incident_w_m2 = 0.0  # global shortwave on a horizontal plane, above any shading
        # spectral irradiance reaching the up-looking sensor per channel (W m-2 nm-1),
        # after shade_up
        self.incident_band = [0.0] * 10
        # spectral irradiance on the canopy itself (not reduced by shade_up); the
        # down-looking sensor sees canopy_band * reflectance * lens_transmission
        self.canopy_band = [0.0] * 10
        self.reflectance = [0.0] * 10  # canopy reflectance per channel (0..1)
        self.lens_transmission = 1.0  # down-looking spectral sensor (1 - lens_dirt)
        self.swap_spectral = False  # up and down sensors installed the wrong way round
        self.ndvi = 0.0  # true NDVI from reflectance[RED], reflectance[NIR]
        self.chlorophyll_index = 0.0  # true CIgreen = R_nir / R_green - 1
        self.canopy_c = 20.0  # true canopy temperature
        self.sky_c = -20.0  # sky brightness temperature seen by the up-looking IR sensor
        self.emissivity = 0.98  # canopy emissivity
        self.air_c = 20.0
        self.rh_pct = 60.0
        self.pressure_pa = 101325.0
        self.tilt_deg = 0.0  # pole tilt from vertical
        self.accel_g = (0.0, 0.0, 1.0)  # gravity in the node's frame (x, y, z), in g
        self.battery_v = 3.9
        self.soc_pct = 80.0
        self.solar_a = 0.0  # charge current into the battery (negative: discharging)
        self.lat = 52.0
        self.lon = 5.0
        self.alt_m = 10.0
        self.gnss_fix = True
