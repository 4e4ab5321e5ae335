"""ivrpowers: contact-center engine on Asterisk."""
__version__ = "0.1.0"
