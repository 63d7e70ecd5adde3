"""Installing a pack offline: conda packages (py-rattler), wheels (installer), activation.

Modules: :mod:`.conda`, :mod:`.wheels`, :mod:`.activation`, :mod:`.virtual_packages`.
"""
