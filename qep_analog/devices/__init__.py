"""Device profiles and the translation of QEP models into the controls of real simulators."""
