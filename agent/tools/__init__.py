"""Agent tools besides the computer: a persistent bash session and a text editor."""
