"""One module per command (or command group); each exports a click object named ``cli``."""
