"""The CERSAI code lists and the PIN master: the code book every form, rule and import reads."""
