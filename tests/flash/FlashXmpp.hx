import flash.display.Sprite;
import flash.events.DataEvent;
import flash.events.Event;
import flash.events.IOErrorEvent;
import flash.events.SecurityErrorEvent;
import flash.external.ExternalInterface;
import flash.net.XMLSocket;
import flash.text.TextField;
import flash.text.TextFormat;
import haxe.crypto.Base64;
import haxe.io.BytesBuffer;

/**
	The Flash chat widget of the end-to-end tests: an AS3 SWF that speaks XMPP over
	`flash.net.XMLSocket` the way XMLSocket-era widgets (XIFF 3.0) did, as described in
	shared/flash-protocol.md §2b-2d: `<flash:stream>` header, SASL PLAIN with the bare JID as
	authzid, restart, bind, legacy session, roster, presence, one chat message out and one in.

	Flashvars: host, port (what `XMLSocket.connect` is given; under Ruffle only the lookup key
	of its socketProxy table), domain, user, pass, resource, peer (bare JID to chat with), body.

	Every step is reported to the page with `ExternalInterface.call("xmppStep", kind, text)`
	(kinds: start, connected, header, features, auth, bound, session, roster, presence, sent,
	received, closing, closed, error; raw units as "in"/"out") and shown in a TextField.

	XMLSocket hands over one NUL-terminated unit per DataEvent.DATA. The units are parsed here:
	a stream header is not a complete XML document, so it is cut off by string search and only
	the stanzas after it go through Xml.parse.
**/
class FlashXmpp extends Sprite {
	var socket:XMLSocket;
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

		var title = new TextField();
		title.x = 10;
		title.y = 8;
		title.width = 780;
		title.defaultTextFormat = new TextFormat("_sans", 20, 0x1F4E79, true);
		title.text = "Jabberwock Flash widget (AS3 XMLSocket)";
		addChild(title);

		transcript = new TextField();
		transcript.x = 10;
		transcript.y = 44;
		transcript.width = 780;
		transcript.height = 546;
		transcript.multiline = true;
		transcript.wordWrap = true;
		transcript.defaultTextFormat = new TextFormat("_sans", 15, 0x202020);
		addChild(transcript);

		socket = new XMLSocket();
		socket.addEventListener(Event.CONNECT, function(_) {
			// Under Ruffle this fires when the WebSocket is created, not when it is open.
			step("connected", host + ":" + port);
			sendHeader();
		});
		socket.addEventListener(DataEvent.DATA, function(e:DataEvent) onUnit(e.data));
		socket.addEventListener(Event.CLOSE, function(_) {
			if (received)
				step("closed", "the server closed the stream");
			else
				step("error", "connection closed before a message arrived");
		});
		socket.addEventListener(IOErrorEvent.IO_ERROR, function(e:IOErrorEvent) step("error", "I/O error: " + e.text));
		socket.addEventListener(SecurityErrorEvent.SECURITY_ERROR, function(e:SecurityErrorEvent) step("error", "security error: " + e.text));
		step("start", "connecting to " + host + ":" + port + " as " + user + "@" + domain + "/" + resource);
		socket.connect(host, port);
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

	/** Sends one unit; XMLSocket appends the NUL. **/
	function send(unit:String, ?shown:String) {
		step("out", shown == null ? unit : shown);
		socket.send(unit);
	}

	function sendHeader() {
		send('<?xml version="1.0"?><flash:stream xmlns="jabber:client" xmlns:flash="http://www.jabber.com/streams/flash" to="'
			+ domain + '" version="1.0">');
	}

	function onUnit(unit:String) {
		step("in", unit);
		if (StringTools.trim(unit) == "")
			return; // keep-alive
		if (StringTools.trim(unit) == "</flash:stream>") {
			step("closing", "the server ended the stream");
			return;
		}
		var start = unit.indexOf("<flash:stream");
		if (start >= 0) {
			// Close the open header tag to read its attributes; after a restart the
			// features follow the header in the same unit.
			var end = unit.indexOf(">", start) + 1;
			var header = Xml.parse(unit.substring(start, end) + "</flash:stream>").firstElement();
			step("header", "stream " + header.get("id") + " from " + header.get("from"));
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
		step("presence", from + " " + (type == null ? "available" : type));
		// Our own presence echoed back: we are online, say hello.
		if (from == jid && type == null && !sent) {
			sent = true;
			send('<message type="chat" to="' + StringTools.htmlEscape(peer, true) + '" id="m_1"><body>' + StringTools.htmlEscape(body)
				+ '</body></message>');
			step("sent", "to " + peer + ": " + body);
		}
	}

	function onMessage(message:Xml) {
		var from = message.get("from");
		if (message.get("type") == "error") {
			step("error", "message error: " + message.toString());
			return;
		}
		var bare = from == null ? "" : from.split("/")[0];
		for (b in message.elementsNamed("body")) {
			if (bare == peer && !received) {
				received = true;
				step("received", from + ": " + text(b));
				send("</flash:stream>");
			}
		}
	}

	static function text(element:Xml):String {
		var child = element.firstChild();
		// Xml.parse has already decoded the entities.
		return child == null ? "" : child.nodeValue;
	}
}
