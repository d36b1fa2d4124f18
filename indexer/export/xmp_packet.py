"""An XMP packet as the user's tools wrote it: its array properties read and edited in
place, everything else kept.

Parsed with the standard library's minidom rather than ElementTree: minidom keeps every
element's namespace prefix, attribute order, comments, whitespace between elements and
the `<?xpacket?>` instructions around the packet, so a merge changes nothing but the
items it edits. ElementTree renames prefixes it was not told about (`darktable:` would
come back as `ns0:`, through process-wide registrations) and drops the packet wrapper.

A sidecar comes from anywhere, so it first goes through expat with DOCTYPE declarations
refused: without a DTD no entity can be declared, so neither external entities nor
entity expansion ("billion laughs") reach the DOM parser.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence
from xml.dom import Node, minidom
from xml.parsers import expat

from indexer.errors import SidecarError

X = "adobe:ns:meta/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XMLNS = "http://www.w3.org/2000/xmlns/"
ARRAYS = ("Bag", "Seq", "Alt")

# A new sidecar starts as this empty packet (the XMP specification's packet wrapper).
EMPTY = (
    b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
    b' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
    b" </rdf:RDF>\n"
    b"</x:xmpmeta>\n"
    b'<?xpacket end="w"?>\n'
)


# What XML 1.0 lets a document hold (its Char production). A sidecar holding anything else
# is read by no XML reader, exiv2 included, so the user's own fields would be lost with it.
FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Line breaks and tabs are escaped in attributes, and carriage returns in text: written
# raw, an XML reader turns them into spaces (attributes) or line feeds (text).
ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
ESCAPES |= {"\t": "&#x9;", "\n": "&#xA;", "\r": "&#xD;"}
IN_ATTRIBUTE = re.compile('[&<>"\t\n\r]')
IN_TEXT = re.compile("[&<>\r]")


def forbidden(text: str) -> str | None:
    """The first character of `text` that XML 1.0 forbids; None where there is none."""
    found = FORBIDDEN.search(text)
    return found.group() if found else None


def refuse_doctype(data: bytes) -> None:
    """Raise SidecarError unless `data` is well-formed XML without a DOCTYPE."""
    checker = expat.ParserCreate()
    checker.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse(*_: object) -> None:
        raise SidecarError("declares a DOCTYPE, which XMP never needs (refused)")

    checker.StartDoctypeDeclHandler = refuse
    try:
        checker.Parse(data, True)
    except expat.ExpatError as exc:
        raise SidecarError(f"not well-formed XML ({exc})") from None


class Packet:
    """The rdf:Description elements under rdf:RDF hold the properties (XMP allows any
    number of them, as exiftool writes one per namespace)."""

    def __init__(self, data: bytes) -> None:
        refuse_doctype(data)
        self.document = minidom.parseString(data)
        self._declared = data.lstrip(b"\xef\xbb\xbf").startswith(b"<?xml")
        root = self.document.documentElement
        if root is None:
            raise SidecarError("no root element")
        self.rdf = _rdf_element(root)
        self._added: minidom.Element | None = None

    def items(self, namespace: str, name: str) -> list[str] | None:
        """The texts of an array property's items; None where the property is absent."""
        found = self._property(namespace, name)
        return None if found is None else [_text(li) for li in _items(_array(found))]

    def edit(
        self,
        namespace: str,
        name: str,
        kind: tuple[str, str],
        remove: Collection[str] = (),
        add: Sequence[str] = (),
    ) -> None:
        """Drop the items whose text is in `remove`, append `add` (creating the property
        as `kind`, a (prefix, Bag or Seq), if needed); a property left empty goes."""
        found = self._property(namespace, name)
        if found is None:
            if not add:
                return
            found = self._create(namespace, name, kind)
        array = _array(found)
        for li in _items(array):
            if _text(li) in remove:
                _detach(li)
        for value in add:
            li = self.document.createElementNS(RDF, _qualified(array.prefix, "li"))
            li.appendChild(self.document.createTextNode(value))
            _append(array, li)
        if not any(True for _ in _items(array)):
            holder = found.parentNode
            _detach(found)
            if isinstance(holder, minidom.Element) and _is_empty(holder):
                _detach(holder)
                if holder is self._added:
                    self._added = None

    def is_empty(self) -> bool:
        """Whether no property is left (`edit` drops the descriptions it empties)."""
        return not any(True for _ in _elements(self.rdf))

    def to_bytes(self) -> bytes:
        """UTF-8; an XML declaration only where the file had one. Raises SidecarError
        where a value holds a character XML forbids (nothing is written then)."""
        try:
            nodes = [_xml(node) for node in self.document.childNodes]
        except RecursionError:
            raise SidecarError("its elements are nested too deep to write back") from None
        head = '<?xml version="1.0" encoding="UTF-8"?>\n' if self._declared else ""
        return (head + "\n".join(nodes) + "\n").encode("utf-8")

    def _descriptions(self) -> Iterator[minidom.Element]:
        for child in _elements(self.rdf):
            if child.namespaceURI == RDF and child.localName == "Description":
                yield child

    def _property(self, namespace: str, name: str) -> minidom.Element | None:
        found = []
        for description in self._descriptions():
            if description.hasAttributeNS(namespace, name):
                raise SidecarError(f"its {name} is a single value, not a list")
            found += [
                child
                for child in _elements(description)
                if child.namespaceURI == namespace and child.localName == name
            ]
        if len(found) > 1:
            raise SidecarError(f"it holds {name} {len(found)} times")
        return found[0] if found else None

    def _create(self, namespace: str, name: str, kind: tuple[str, str]) -> minidom.Element:
        """A new property, in an rdf:Description of dtindex's own that declares its
        namespace, so no prefix of the user's is redefined around it."""
        prefix, container = kind
        if self._added is None:
            self._added = self._new_description()
        holder = self._added
        if holder.getAttributeNS(XMLNS, prefix) != namespace:
            holder.setAttributeNS(XMLNS, f"xmlns:{prefix}", namespace)
        created = self.document.createElementNS(namespace, f"{prefix}:{name}")
        _append(holder, created)
        rdf_prefix = self.rdf.prefix
        array = self.document.createElementNS(RDF, _qualified(rdf_prefix, container))
        _append(created, array)
        return created

    def _new_description(self) -> minidom.Element:
        rdf_prefix = self.rdf.prefix or "rdf"
        about = next((d.getAttributeNS(RDF, "about") for d in self._descriptions()), "")
        created = self.document.createElementNS(RDF, f"{rdf_prefix}:Description")
        if self.rdf.prefix is None:  # rdf:RDF used a default namespace
            created.setAttributeNS(XMLNS, "xmlns:rdf", RDF)
        created.setAttributeNS(RDF, f"{rdf_prefix}:about", about)
        _append(self.rdf, created)
        return created


def _rdf_element(root: minidom.Element) -> minidom.Element:
    if root.namespaceURI == RDF and root.localName == "RDF":
        return root
    if root.namespaceURI == X and root.localName == "xmpmeta":
        for child in _elements(root):
            if child.namespaceURI == RDF and child.localName == "RDF":
                return child
    raise SidecarError("no x:xmpmeta packet holding rdf:RDF")


def _elements(parent: minidom.Element) -> Iterator[minidom.Element]:
    for child in parent.childNodes:
        if isinstance(child, minidom.Element):
            yield child


def _array(found: minidom.Element) -> minidom.Element:
    arrays = list(_elements(found))
    if len(arrays) != 1 or arrays[0].namespaceURI != RDF or arrays[0].localName not in ARRAYS:
        raise SidecarError(f"its {found.localName} is not an rdf:Bag or rdf:Seq")
    return arrays[0]


def _items(array: minidom.Element) -> list[minidom.Element]:
    return [c for c in _elements(array) if c.namespaceURI == RDF and c.localName == "li"]


def _text(li: minidom.Element) -> str:
    if any(isinstance(child, minidom.Element) for child in li.childNodes):
        raise SidecarError("a keyword list holds structured items, not text")
    return "".join(c.data for c in li.childNodes if isinstance(c, minidom.Text))


def _qualified(prefix: str | None, name: str) -> str:
    return f"{prefix}:{name}" if prefix else name


def _is_empty(description: minidom.Element) -> bool:
    """An rdf:Description with no properties left: no child elements, and no attributes
    but namespace declarations and rdf:about."""
    if description.namespaceURI != RDF or description.localName != "Description":
        return False
    if any(True for _ in _elements(description)):
        return False
    attributes = description.attributes
    for index in range(attributes.length):
        attribute = attributes.item(index)
        name = (attribute.namespaceURI, attribute.localName) if attribute else (XMLNS, "")
        if name[0] != XMLNS and name != (RDF, "about"):
            return False
    return True


def _blank(node: Node | None) -> bool:
    return isinstance(node, minidom.Text) and not node.data.strip()


def _indent(element: minidom.Element) -> str | None:
    """The whitespace that starts `element`'s line; None where it does not start one."""
    before = element.previousSibling
    if isinstance(before, minidom.Text) and _blank(before) and "\n" in before.data:
        return before.data.rsplit("\n", 1)[1]
    return None


def _append(parent: minidom.Element, child: minidom.Element) -> None:
    """Append `child` laid out as its siblings are: on a line of its own, indented like
    them (or one space deeper than `parent`), or run on where the packet is compact."""
    siblings = list(_elements(parent))
    outer = _indent(parent)
    inner = _indent(siblings[0]) if siblings else (None if outer is None else outer + " ")
    if inner is None:
        parent.appendChild(child)
        return
    document = parent.ownerDocument
    assert document is not None
    closing = parent.lastChild if _blank(parent.lastChild) else None
    if closing is None:
        closing = parent.appendChild(document.createTextNode("\n" + (outer or "")))
    parent.insertBefore(document.createTextNode("\n" + inner), closing)
    parent.insertBefore(child, closing)


def _detach(element: minidom.Element) -> None:
    """Remove `element` and the whitespace that put it on a line of its own."""
    parent = element.parentNode
    if not isinstance(parent, minidom.Element):
        return  # the root is never removed
    before = element.previousSibling
    if isinstance(before, minidom.Text) and _blank(before):
        parent.removeChild(before)
    parent.removeChild(element)


def _xml(node: minidom.Node) -> str:
    """`node` as minidom's toxml() writes it, but with every value read back by an XML
    reader exactly as it was parsed (`ESCAPES`), and never a character XML forbids."""
    if isinstance(node, minidom.Element):
        pairs = node.attributes.items()
        attributes = "".join(f' {name}="{_escaped(value, IN_ATTRIBUTE)}"' for name, value in pairs)
        if not node.childNodes:
            return f"<{node.tagName}{attributes}/>"
        inner = "".join(_xml(child) for child in node.childNodes)
        return f"<{node.tagName}{attributes}>{inner}</{node.tagName}>"
    if isinstance(node, minidom.Text):  # CDATA sections too: the same text, escaped
        return _escaped(node.data, IN_TEXT)
    return str(node.toxml())  # comments and processing instructions, as they were


def _escaped(text: str, special: re.Pattern[str]) -> str:
    bad = forbidden(text)
    if bad is not None:
        raise SidecarError(f"{text!r} holds U+{ord(bad):04X}, which XML forbids")
    return special.sub(lambda found: ESCAPES[found.group()], text)
