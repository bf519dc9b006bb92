import flash.display.Sprite;
import flash.events.DataEvent;
import flash.events.Event;
import flash.events.IOErrorEvent;
import flash.events.ProgressEvent;
import flash.events.SecurityErrorEvent;
import flash.external.ExternalInterface;
import flash.net.Socket;
import flash.net.XMLSocket;
import flash.utils.ByteArray;
import flash.text.TextField;
import flash.text.TextFormat;
import haxe.crypto.Base64;
import haxe.io.BytesBuffer;

/**
	The Flash chat widget of the end-to-end tests: an AS3 SWF that speaks XMPP the way
	Flash-era widgets did (as Openfire served them): stream header, SASL PLAIN with the
	bare JID as authzid, restart, bind, legacy session, roster, presence, one chat message out
	and one in.

	It opens each way those clients did, chosen by flashvars:
	- `header`: "flash" (`<flash:stream>`, XMLSocket-era XIFF), "standard" (`<stream:stream>`,
	  XIFF 3 and the Flex clients), or "selfclosed" (the standard header ending in `/>`, XIFF 3's
	  default "terminatedStandard");
	- `nul`: "1" = `flash.net.XMLSocket` (the player ends every unit with NUL and delivers what
	  it receives at each NUL), "0" = `flash.net.Socket` (XIFF 3's binary socket: bytes as
	  they are both ways; units read here are cut at NULs if the server sends them, else by
	  XML nesting).

	Other flashvars: host, port (what `connect` is given; under Ruffle only the lookup key
	of its socketProxy table), domain, user, pass, resource, peer (bare JID to chat with), body.

	Room mode (XEP-0045), when `room` (a room's bare JID) is given instead of chatting with
	`peer`: after its own presence the widget enters the room as `nick`, with `join` "muc"
	(the XEP-0045 §7.2.2 presence carrying `<x xmlns="http://jabber.org/protocol/muc"/>`) or
	"plain" (the groupchat 1.0 presence without it, §7.1.1, as XIFF-era widgets sent). It sends
	`body` to the room once every nick of `occupants` (comma-separated) is in the room, and
	is done once a live groupchat message from each of them has arrived (and stays in the
	room: the page's end ends the session). The room's
	occupants and messages are shown in a panel of their own on the right.

	Every step is reported to the page with `ExternalInterface.call("xmppStep", kind, text)`
	(kinds: start, connected, header, features, auth, bound, session, roster, presence, sent,
	received, closing, closed, error; in room mode also joined, occupant, subject, groupchat,
	echo; raw units as "in"/"out") and shown in a TextField.

	A stream header is not a complete XML document, so it is cut off by string search and only
	the stanzas after it go through Xml.parse.
**/
class FlashXmpp extends Sprite {
	var socket:XMLSocket;
	var binary:Socket;
	/** Binary socket: bytes received and not yet decoded, and text not yet cut into units. **/
	var inBytes = new ByteArray();
	var inText = "";
	var header:String;
	var nul:Bool;
	var transcript:TextField;
	var host:String;
	var port:Int;
	var domain:String;
	var user:String;
	var pass:String;
	var resource:String;
	var peer:String;
	var body:String;
	var authenticated = false;
	var jid = "";
	var sent = false;
	var received = false;
	/** Room mode: the room's bare JID ("" = chat with `peer`), our nick, the join kind. **/
	var room:String;
	var nick:String;
	var join:String;
	/** The nicks to wait for, those present (nick → role) and what each said live. **/
	var expected:Array<String>;
	var present = new Map<String, String>();
	var heard = new Map<String, String>();
	var joined = false;
	var joinSent = false;
	var roomView:TextField;
	var roomLines:Array<String> = [];

	static function main() {
		flash.Lib.current.addChild(new FlashXmpp());
	}

	public function new() {
		super();
		var params:Dynamic = flash.Lib.current.loaderInfo.parameters;
		host = param(params, "host", "127.0.0.1");
		port = Std.parseInt(param(params, "port", "5222"));
		domain = param(params, "domain", "localhost");
		user = param(params, "user", "alice");
		pass = param(params, "pass", "");
		resource = param(params, "resource", "flashwidget");
		peer = param(params, "peer", "bob@localhost");
		body = param(params, "body", "hello from Flash");
		header = param(params, "header", "flash");
		nul = param(params, "nul", "1") != "0";
		room = param(params, "room", "");
		nick = param(params, "nick", user);
		join = param(params, "join", "muc");
		expected = [for (n in param(params, "occupants", "").split(",")) if (n != "") n];

		var title = new TextField();
		title.x = 10;
		title.y = 8;
		title.width = 780;
		title.defaultTextFormat = new TextFormat("_sans", 20, 0x1F4E79, true);
		title.text = "Jabberwock Flash widget (AS3 " + (nul ? "XMLSocket" : "Socket") + ", " + header + " header"
			+ (room == "" ? ")" : ", " + join + " join)");
		addChild(title);

		transcript = new TextField();
		transcript.x = 10;
		transcript.y = 44;
		transcript.width = room == "" ? 780 : 380;
		transcript.height = 546;
		transcript.multiline = true;
		transcript.wordWrap = true;
		transcript.defaultTextFormat = new TextFormat("_sans", 15, 0x202020);
		addChild(transcript);
		if (room != "") {
			roomView = new TextField();
			roomView.x = 400;
			roomView.y = 44;
			roomView.width = 390;
			roomView.height = 546;
			roomView.multiline = true;
			roomView.wordWrap = true;
			roomView.background = true;
			roomView.backgroundColor = 0xE8F0FA;
			roomView.border = true;
			roomView.borderColor = 0x1F4E79;
			roomView.defaultTextFormat = new TextFormat("_sans", 16, 0x0A2540);
			addChild(roomView);
			showRoom();
		}

		var onConnect = function(_) {
			// Under Ruffle this fires when the WebSocket is created, not when it is open.
			step("connected", host + ":" + port);
			sendHeader();
		};
		var onClose = function(_) {
			if (received)
				step("closed", "the server closed the stream");
			else
				step("error", "connection closed before a message arrived");
		};
		var onIoError = function(e:IOErrorEvent) step("error", "I/O error: " + e.text);
		var onSecurityError = function(e:SecurityErrorEvent) step("error", "security error: " + e.text);
		step("start", "connecting to " + host + ":" + port + " as " + user + "@" + domain + "/" + resource);
		if (nul) {
			socket = new XMLSocket();
			socket.addEventListener(Event.CONNECT, onConnect);
			socket.addEventListener(DataEvent.DATA, function(e:DataEvent) onUnit(e.data));
			socket.addEventListener(Event.CLOSE, onClose);
			socket.addEventListener(IOErrorEvent.IO_ERROR, onIoError);
			socket.addEventListener(SecurityErrorEvent.SECURITY_ERROR, onSecurityError);
			socket.connect(host, port);
		} else {
			binary = new Socket();
			binary.addEventListener(Event.CONNECT, onConnect);
			binary.addEventListener(ProgressEvent.SOCKET_DATA, function(_) onBytes());
			binary.addEventListener(Event.CLOSE, onClose);
			binary.addEventListener(IOErrorEvent.IO_ERROR, onIoError);
			binary.addEventListener(SecurityErrorEvent.SECURITY_ERROR, onSecurityError);
			binary.connect(host, port);
		}
	}

	/** Binary socket: decodes what arrived and hands on every complete unit. **/
	function onBytes() {
		binary.readBytes(inBytes, inBytes.length);
		var size:Int = inBytes.length;
		// Units end in '>' or NUL: wait while the bytes end inside a UTF-8 sequence.
		if (size == 0 || inBytes[size - 1] >= 0x80)
			return;
		// readUTFBytes stops at a NUL, so the text between NULs is decoded piece by piece;
		// the units are found by their XML nesting, the NULs themselves are dropped.
		var from = 0;
		for (i in 0...size) {
			if (inBytes[i] == 0) {
				inBytes.position = from;
				inText += inBytes.readUTFBytes(i - from);
				from = i + 1;
			}
		}
		inBytes.position = from;
		inText += inBytes.readUTFBytes(size - from);
		inBytes.clear();
		var unit = nextUnit();
		while (unit != null) {
			onUnit(unit);
			unit = nextUnit();
		}
	}

	/**
		The next complete unit of `inText`, or null: a stream header, a closing stream tag or
		one whole element (by tag nesting).
	**/
	function nextUnit():Null<String> {
		var depth = 0;
		var i = 0;
		while (i < inText.length) {
			var lt = inText.indexOf("<", i);
			if (lt < 0)
				break;
			var gt = tagEnd(lt);
			if (gt < 0)
				return null;
			var tag = inText.substring(lt, gt + 1);
			i = gt + 1;
			if (StringTools.startsWith(tag, "<?") || StringTools.startsWith(tag, "<!"))
				continue;
			if (StringTools.startsWith(tag, "</"))
				depth--;
			else if (StringTools.startsWith(tag, "<stream:stream") || StringTools.startsWith(tag, "<flash:stream"))
				depth = 0; // a header is a unit of its own
			else if (!StringTools.endsWith(tag, "/>"))
				depth++;
			if (depth <= 0) {
				var unit = inText.substr(0, i);
				inText = inText.substr(i);
				return unit;
			}
		}
		if (StringTools.trim(inText) == "")
			inText = ""; // whitespace keep-alives
		return null;
	}

	/** Index of the '>' ending the tag opened at `lt` (quoted values skipped), or -1. **/
	function tagEnd(lt:Int):Int {
		var quote = "";
		for (j in lt + 1...inText.length) {
			var c = inText.charAt(j);
			if (quote != "") {
				if (c == quote)
					quote = "";
			} else if (c == "\"" || c == "'") {
				quote = c;
			} else if (c == ">") {
				return j;
			}
		}
		return -1;
	}

	static function param(params:Dynamic, name:String, fallback:String):String {
		var value:Dynamic = Reflect.field(params, name);
		return value == null ? fallback : Std.string(value);
	}

	function step(kind:String, text:String) {
		if (kind != "in" && kind != "out")
			transcript.appendText("[" + kind + "] " + text + "\n");
		if (ExternalInterface.available)
			ExternalInterface.call("xmppStep", kind, text);
	}

	/** Sends one unit; XMLSocket appends the NUL, the binary socket sends the bytes alone. **/
	function send(unit:String, ?shown:String) {
		step("out", shown == null ? unit : shown);
		if (nul) {
			socket.send(unit);
		} else {
			binary.writeUTFBytes(unit);
			binary.flush();
		}
	}

	function sendHeader() {
		var ending = header == "selfclosed" ? " />" : ">";
		if (header == "flash")
			send('<?xml version="1.0"?><flash:stream xmlns="jabber:client" xmlns:flash="http://www.jabber.com/streams/flash" to="'
				+ domain + '" version="1.0">');
		else
			// XIFF 3's attribute order.
			send('<?xml version="1.0"?><stream:stream to="' + domain
				+ '" xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" version="1.0"' + ending);
	}

	function closingTag():String {
		return header == "flash" ? "</flash:stream>" : "</stream:stream>";
	}

	function onUnit(unit:String) {
		step("in", unit);
		if (StringTools.trim(unit) == "")
			return; // keep-alive
		var trimmed = StringTools.trim(unit);
		if (trimmed == "</flash:stream>" || trimmed == "</stream:stream>") {
			step("closing", "the server ended the stream");
			return;
		}
		var start = unit.indexOf("<flash:stream");
		var root = "flash:stream";
		if (start < 0) {
			start = unit.indexOf("<stream:stream");
			root = "stream:stream";
		}
		if (start >= 0) {
			// Close the open header tag to read its attributes; after a restart the
			// features follow the header in the same unit.
			var end = unit.indexOf(">", start) + 1;
			var theirs = Xml.parse(unit.substring(start, end) + "</" + root + ">").firstElement();
			step("header", "stream " + theirs.get("id") + " from " + theirs.get("from"));
			unit = unit.substr(end);
			if (StringTools.trim(unit) == "")
				return;
		}
		var stanza:Xml;
		try {
			stanza = Xml.parse(unit).firstElement();
		} catch (e:Dynamic) {
			step("error", "unparseable unit: " + unit);
			return;
		}
		switch (stanza.nodeName) {
			case "stream:features":
				onFeatures(stanza);
			case "success":
				authenticated = true;
				step("auth", "success (SASL PLAIN)");
				sendHeader();
			case "failure":
				step("error", "authentication failed: " + stanza.toString());
			case "stream:error":
				step("error", "stream error: " + stanza.toString());
			case "iq":
				onIq(stanza);
			case "presence":
				onPresence(stanza);
			case "message":
				onMessage(stanza);
			default:
				step("error", "unexpected unit: " + unit);
		}
	}

	function onFeatures(features:Xml) {
		if (authenticated) {
			step("features", "bind, session");
			send('<iq type="set" id="bind_1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>' + StringTools.htmlEscape(resource, true)
				+ '</resource></bind></iq>');
			return;
		}
		var mechanisms = [];
		for (list in features.elementsNamed("mechanisms"))
			for (m in list.elementsNamed("mechanism"))
				mechanisms.push(text(m));
		step("features", "mechanisms " + mechanisms.join(" "));
		if (mechanisms.indexOf("PLAIN") < 0) {
			step("error", "PLAIN is not offered");
			return;
		}
		// XIFF's PLAIN message: authzid = bare JID, authcid = node, password.
		var message = new BytesBuffer();
		message.addString(user + "@" + domain);
		message.addByte(0);
		message.addString(user);
		message.addByte(0);
		message.addString(pass);
		send('<auth mechanism="PLAIN" xmlns="urn:ietf:params:xml:ns:xmpp-sasl">' + Base64.encode(message.getBytes()) + '</auth>',
			'<auth mechanism="PLAIN" xmlns="urn:ietf:params:xml:ns:xmpp-sasl">(credentials)</auth>');
	}

	function onIq(iq:Xml) {
		var type = iq.get("type");
		if (type == "get" || type == "set") {
			// A roster push or a ping: acknowledge it.
			send('<iq type="result" id="' + StringTools.htmlEscape(iq.get("id"), true) + '"/>');
			return;
		}
		if (type == "error") {
			step("error", "iq error: " + iq.toString());
			return;
		}
		switch (iq.get("id")) {
			case "bind_1":
				for (bind in iq.elements())
					for (j in bind.elementsNamed("jid"))
						jid = text(j);
				step("bound", jid);
				send('<iq type="set" id="sess_1"><session xmlns="urn:ietf:params:xml:ns:xmpp-session"/></iq>');
			case "sess_1":
				step("session", "established");
				send('<iq type="get" id="roster_1"><query xmlns="jabber:iq:roster"/></iq>');
			case "roster_1":
				var items = [];
				for (query in iq.elements())
					for (item in query.elementsNamed("item"))
						items.push(item.get("jid") + " (" + item.get("subscription") + ")");
				step("roster", items.length + " item(s): " + items.join(", "));
				send("<presence/>");
		}
	}

	function onPresence(presence:Xml) {
		var from = presence.get("from");
		var type = presence.get("type");
		if (room != "" && from != null && StringTools.startsWith(from, room + "/")) {
			onRoomPresence(presence, from.substr(room.length + 1), type);
			return;
		}
		step("presence", from + " " + (type == null ? "available" : type));
		if (room != "") {
			// Online: enter the room (XEP-0045 §7.2.2), or the groupchat 1.0 way (§7.1.1).
			if (from == jid && type == null && !joinSent) {
				joinSent = true;
				var x = join == "plain" ? "" : '<x xmlns="http://jabber.org/protocol/muc"/>';
				send('<presence to="' + StringTools.htmlEscape(room + "/" + nick, true) + '">' + x + '</presence>');
				step("joining", room + " as " + nick + " (" + join + " join)");
			}
			return;
		}
		// Our own presence echoed back: we are online, say hello.
		if (from == jid && type == null && !sent) {
			sent = true;
			send('<message type="chat" to="' + StringTools.htmlEscape(peer, true) + '" id="m_1"><body>' + StringTools.htmlEscape(body)
				+ '</body></message>');
			step("sent", "to " + peer + ": " + body);
		}
	}

	/** An occupant's presence (XEP-0045 §7.2.3), ours with status 110 (§7.2.2). **/
	function onRoomPresence(presence:Xml, who:String, type:String) {
		if (type == "error") {
			step("error", "the room refused: " + presence.toString());
			return;
		}
		var role = "";
		var self = false;
		for (x in presence.elementsNamed("x")) {
			if (x.get("xmlns") != "http://jabber.org/protocol/muc#user")
				continue;
			for (item in x.elementsNamed("item"))
				role = item.get("role");
			for (status in x.elementsNamed("status"))
				if (status.get("code") == "110")
					self = true;
		}
		if (type == "unavailable") {
			present.remove(who);
			step("occupant", who + " left");
			roomLines.push("* " + who + " left");
		} else if (self || who == nick) {
			if (!joined) {
				joined = true;
				step("joined", room + "/" + who + " as " + role);
				roomLines.push("* you joined as " + who + " (" + role + ")");
			}
		} else if (!present.exists(who)) {
			present.set(who, role);
			step("occupant", who + " joined (" + role + ")");
			roomLines.push("* " + who + " joined (" + role + ")");
		}
		showRoom();
		sayToRoom();
	}

	/** Speaks once in the room and all the expected occupants are there. **/
	function sayToRoom() {
		if (!joined || sent)
			return;
		for (n in expected)
			if (!present.exists(n))
				return;
		sent = true;
		send('<message type="groupchat" to="' + StringTools.htmlEscape(room, true) + '" id="g_1"><body>' + StringTools.htmlEscape(body)
			+ '</body></message>');
		step("sent", "to " + room + ": " + body);
	}

	/** A message from the room (§7.4) or one of its occupants; history (delayed) is shown only. **/
	function onRoomMessage(message:Xml, who:String) {
		for (s in message.elementsNamed("subject")) {
			step("subject", "'" + text(s) + "'" + (who == "" ? "" : " set by " + who));
			return;
		}
		var live = !message.elementsNamed("delay").hasNext();
		for (b in message.elementsNamed("body")) {
			var said = text(b);
			if (who == nick) {
				step("echo", who + ": " + said);
			} else {
				step("groupchat", who + ": " + said + (live ? "" : " (history)"));
				if (live && expected.indexOf(who) >= 0 && !heard.exists(who))
					heard.set(who, said);
			}
			roomLines.push(who + ": " + said);
		}
		showRoom();
		if (received)
			return;
		for (n in expected)
			if (!heard.exists(n))
				return;
		received = true;
		// Still in the room, so the others keep seeing us until the page is closed.
		step("received", "from " + expected.join(", ") + " in " + room);
	}

	function showRoom() {
		var nicks = [for (n in present.keys()) n];
		nicks.sort(function(a, b) return a < b ? -1 : (a > b ? 1 : 0));
		roomView.text = "Room " + room + (joined ? " as " + nick : "") + "\n" + "Occupants (" + nicks.length + "): " + nicks.join(", ") + "\n\n"
			+ roomLines.join("\n");
	}

	function onMessage(message:Xml) {
		var from = message.get("from");
		if (message.get("type") == "error") {
			step("error", "message error: " + message.toString());
			return;
		}
		if (room != "" && from != null && (from == room || StringTools.startsWith(from, room + "/"))) {
			onRoomMessage(message, from == room ? "" : from.substr(room.length + 1));
			return;
		}
		var bare = from == null ? "" : from.split("/")[0];
		for (b in message.elementsNamed("body")) {
			if (bare == peer && !received) {
				received = true;
				step("received", from + ": " + text(b));
				send(closingTag());
			}
		}
	}

	static function text(element:Xml):String {
		var child = element.firstChild();
		// Xml.parse has already decoded the entities.
		return child == null ? "" : child.nodeValue;
	}
}
