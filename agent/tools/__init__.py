"""The tools a model can call: the computer, a bash shell and a text editor, behind one protocol."""
