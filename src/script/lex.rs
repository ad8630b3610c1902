//! The moded tokenizer of ld's command language.
//!
//! ld 2.40 lexes the same bytes differently depending on where the grammar is: at command
//! level a name may hold `-`, `,`, `=` and `:` (`i386:x86-64`), inside an output section's
//! braces it also holds `*?[]!^` (`*crtbegin?.o`), in an expression it is C-like apart from
//! `/` and `~` (`a-b` is a subtraction, `a/b` is one name), and in `INPUT(…)` lists `-lfoo` is
//! a library. This module owns those character classes, the keyword table and the number
//! forms, and applies flex's rule: the longest match wins, ties go to the earlier rule
//! (numbers, then operators, then keywords, then names). It knows nothing about grammar.

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::{tag, take_till, take_until, take_while, take_while1};
use nom::character::complete::{char, digit1, space0};

use super::ast::{LineMarker, Span};
use super::diag::Problem;

/// The lexer state: which character classes make up a name, and which words are keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Commands and `SECTIONS`/`MEMORY`/`PHDRS` level (ld's `SCRIPT` state).
    Script,
    /// Expressions (ld's `EXPRESSION` state).
    Expr,
    /// Inside an output section's braces (ld's `WILD` state).
    Wild,
    /// The file list of `INPUT(…)` and `GROUP(…)` (ld's `INPUTLIST` state).
    InputList,
}

impl Mode {
    fn bit(self) -> u8 {
        match self {
            Mode::Script => S,
            Mode::Expr => E,
            Mode::Wild => W,
            Mode::InputList => I,
        }
    }

    /// How a stray character is described in errors.
    pub(crate) fn place(self) -> &'static str {
        match self {
            Mode::Expr => "in expression",
            Mode::Wild => "in output section",
            Mode::Script | Mode::InputList => "in script",
        }
    }
}

const S: u8 = 1;
const E: u8 = 2;
const W: u8 = 4;
const I: u8 = 8;

macro_rules! keywords {
    ($($variant:ident = $text:literal in $modes:expr;)*) => {
        /// A reserved word, recognised only in the lexer modes listed for it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Kw { $($variant,)* }

        impl Kw {
            pub(crate) fn as_str(self) -> &'static str {
                match self { $(Kw::$variant => $text,)* }
            }

        }

        const KEYWORD_TABLE: &[(&str, Kw, u8)] = &[$(($text, Kw::$variant, $modes),)*];

        /// Every word the lexer treats as a keyword in some mode (the grammar file must
        /// mention each one).
        pub const KEYWORDS: &[&str] = &[$($text,)*];
    };
}

keywords! {
    Memory = "MEMORY" in S;
    RegionAlias = "REGION_ALIAS" in S;
    LdFeature = "LD_FEATURE" in S;
    Origin = "ORIGIN" in S | E;
    Version = "VERSION" in S;
    Block = "BLOCK" in S | E;
    Bind = "BIND" in S | E;
    Length = "LENGTH" in S | E;
    Align = "ALIGN" in S | E;
    DataSegmentAlign = "DATA_SEGMENT_ALIGN" in S | E;
    DataSegmentRelroEnd = "DATA_SEGMENT_RELRO_END" in S | E;
    DataSegmentEnd = "DATA_SEGMENT_END" in S | E;
    Addr = "ADDR" in S | E;
    LoadAddr = "LOADADDR" in S | E;
    AlignOf = "ALIGNOF" in S | E;
    Absolute = "ABSOLUTE" in S | E;
    Max = "MAX" in S | E;
    Min = "MIN" in S | E;
    Log2Ceil = "LOG2CEIL" in S | E;
    Assert = "ASSERT" in S | E | W;
    Entry = "ENTRY" in S;
    Extern = "EXTERN" in S;
    Next = "NEXT" in S | E;
    SizeofHeaders = "SIZEOF_HEADERS" in S | E;
    SegmentStart = "SEGMENT_START" in S | E;
    Map = "MAP" in S;
    Sizeof = "SIZEOF" in S | E;
    Target = "TARGET" in S;
    SearchDir = "SEARCH_DIR" in S;
    Output = "OUTPUT" in S;
    Input = "INPUT" in S;
    Group = "GROUP" in S;
    AsNeeded = "AS_NEEDED" in I;
    Defined = "DEFINED" in S | E;
    CreateObjectSymbols = "CREATE_OBJECT_SYMBOLS" in W;
    Constructors = "CONSTRUCTORS" in W;
    ForceCommonAllocation = "FORCE_COMMON_ALLOCATION" in S;
    ForceGroupAllocation = "FORCE_GROUP_ALLOCATION" in S;
    InhibitCommonAllocation = "INHIBIT_COMMON_ALLOCATION" in S;
    Sections = "SECTIONS" in S;
    Insert = "INSERT" in S;
    After = "AFTER" in S;
    Before = "BEFORE" in S;
    Fill = "FILL" in W;
    Startup = "STARTUP" in S;
    OutputFormat = "OUTPUT_FORMAT" in S;
    OutputArch = "OUTPUT_ARCH" in S;
    Hll = "HLL" in S;
    Syslib = "SYSLIB" in S;
    Float = "FLOAT" in S;
    Quad = "QUAD" in W;
    Squad = "SQUAD" in W;
    Long = "LONG" in W;
    Short = "SHORT" in W;
    Byte = "BYTE" in W;
    NoFloat = "NOFLOAT" in S;
    NoCrossRefs = "NOCROSSREFS" in S | E;
    NoCrossRefsTo = "NOCROSSREFS_TO" in S | E;
    Overlay = "OVERLAY" in S | E;
    SortByName = "SORT_BY_NAME" in W;
    SortByAlignment = "SORT_BY_ALIGNMENT" in W;
    Sort = "SORT" in W;
    SortByInitPriority = "SORT_BY_INIT_PRIORITY" in W;
    SortNone = "SORT_NONE" in W;
    Reverse = "REVERSE" in W;
    NoLoad = "NOLOAD" in E;
    ReadOnly = "READONLY" in E;
    DSect = "DSECT" in E;
    Copy = "COPY" in E;
    Info = "INFO" in E;
    Type = "TYPE" in E;
    OnlyIfRo = "ONLY_IF_RO" in S | E;
    OnlyIfRw = "ONLY_IF_RW" in S | E;
    Special = "SPECIAL" in S | E;
    OriginO = "o" in S;
    OriginOrg = "org" in S;
    LengthL = "l" in S;
    LengthLen = "len" in S;
    InputSectionFlags = "INPUT_SECTION_FLAGS" in W;
    Include = "INCLUDE" in S | E | W;
    Phdrs = "PHDRS" in S;
    At = "AT" in S | E | W;
    AlignWithInput = "ALIGN_WITH_INPUT" in S | E;
    SubAlign = "SUBALIGN" in S | E;
    Hidden = "HIDDEN" in S | E | W;
    Provide = "PROVIDE" in S | E | W;
    ProvideHidden = "PROVIDE_HIDDEN" in S | E | W;
    Keep = "KEEP" in W;
    ExcludeFile = "EXCLUDE_FILE" in W;
    Constant = "CONSTANT" in S | E;
    Chip = "CHIP" in S;
    ChipLower = "chip" in S;
}

/// Open-addressed hash of the keyword table: slot → index + 1 (0 is empty).
const KW_SLOTS: usize = 512;

const fn kw_hash(b: &[u8]) -> usize {
    let n = b.len();
    (n * 131 + b[0] as usize * 31 + b[n - 1] as usize * 7 + b[n / 2] as usize) % KW_SLOTS
}

const fn kw_index() -> [u8; KW_SLOTS] {
    let mut slots = [0u8; KW_SLOTS];
    let mut i = 0;
    while i < KEYWORD_TABLE.len() {
        let mut h = kw_hash(KEYWORD_TABLE[i].0.as_bytes());
        while slots[h] != 0 {
            h = (h + 1) % KW_SLOTS;
        }
        slots[h] = (i + 1) as u8;
        i += 1;
    }
    slots
}

static KW_INDEX: [u8; KW_SLOTS] = kw_index();

impl Kw {
    /// The keyword spelled `text` and the modes it is a keyword in.
    fn lookup(b: &[u8]) -> Option<(Kw, u8)> {
        if b.is_empty() || b.len() > 25 {
            return None;
        }
        let mut h = kw_hash(b);
        loop {
            let slot = KW_INDEX[h];
            if slot == 0 {
                return None;
            }
            let (word, kw, modes) = KEYWORD_TABLE[slot as usize - 1];
            if word.as_bytes() == b {
                return Some((kw, modes));
            }
            h = (h + 1) % KW_SLOTS;
        }
    }
}

macro_rules! puncts {
    ($($variant:ident = $text:literal in $modes:expr;)*) => {
        /// An operator or delimiter, longest first within each length.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum P { $($variant,)* }

        impl P {
            pub(crate) fn as_str(self) -> &'static str {
                match self { $(P::$variant => $text,)* }
            }
        }

        const PUNCTS: &[(P, &[u8], u8)] = &[$((P::$variant, $text.as_bytes(), $modes),)*];
    };
}

puncts! {
    ShlEq = "<<=" in S | E | W;
    ShrEq = ">>=" in S | E | W;
    OrOr = "||" in E;
    EqEq = "==" in E;
    Ne = "!=" in E;
    Ge = ">=" in E;
    Le = "<=" in E;
    Shl = "<<" in E;
    Shr = ">>" in E;
    PlusEq = "+=" in S | E | W;
    MinusEq = "-=" in S | E | W;
    MulEq = "*=" in S | E | W;
    DivEq = "/=" in S | E | W;
    AndEq = "&=" in S | E | W;
    OrEq = "|=" in S | E | W;
    XorEq = "^=" in S | E | W;
    AndAnd = "&&" in E;
    RBracket = "]" in W;
    LBracket = "[" in W;
    Gt = ">" in S | E;
    Comma = "," in S | E | I;
    Amp = "&" in E | W;
    Pipe = "|" in E;
    Caret = "^" in E;
    Tilde = "~" in S | E;
    Bang = "!" in S | E;
    Question = "?" in E;
    Star = "*" in E;
    Plus = "+" in S | E;
    Minus = "-" in S | E;
    Slash = "/" in E;
    Percent = "%" in E;
    Lt = "<" in E;
    Eq = "=" in S | E | W;
    RBrace = "}" in S | E | W;
    LBrace = "{" in S | E | W;
    RParen = ")" in S | E | W | I;
    LParen = "(" in S | E | W | I;
    Colon = ":" in S | E;
    Semi = ";" in S | E | W;
}

/// What a token is. Names, strings and numbers are read back from the source through the
/// token's span ([`Token::text`], [`Token::value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An unquoted name in the current mode's character class.
    Name,
    /// A `"…"` string (ld has no escapes).
    Quoted,
    /// `-lNAME` in an input list.
    Library,
    /// A number, and which of ld's number rules read it.
    Int(NumberForm),
    Kw(Kw),
    Punct(P),
    Eof,
}

/// The number rule a number token matched, which decides how its digits are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberForm {
    /// `$hex`, `0xhex`, decimal or octal, with an optional `K`/`M`.
    Plain,
    /// Expression-only digits with a radix letter (`1000h`, `777o`, `101b`).
    Radix,
}

/// A token: what it is and where. Sixteen bytes, so tokens travel in registers rather than
/// through memory; the length is split in two fields only to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    len_low: u32,
    len_high: u16,
}

impl Token {
    pub(crate) fn new(tok: Tok, start: usize, end: usize) -> Token {
        let len = (end - start) as u64;
        Token {
            tok,
            start,
            len_low: len as u32,
            len_high: (len >> 32) as u16,
        }
    }

    pub(crate) fn end(self) -> usize {
        self.start + (u64::from(self.len_low) | (u64::from(self.len_high) << 32)) as usize
    }

    pub(crate) fn span(self) -> Span {
        Span::new(self.start, self.end())
    }

    /// A name's text, a string's inner text or a library's name after `-l`.
    pub(crate) fn text(self, src: &str) -> &str {
        let end = self.end();
        match self.tok {
            Tok::Quoted => &src[self.start + 1..end - 1],
            Tok::Library => &src[self.start + 2..end],
            _ => &src[self.start..end],
        }
    }

    /// The value ld gives a number token (0 for any other token).
    pub(crate) fn value(self, src: &str) -> u64 {
        let rest = &src.as_bytes()[self.start..];
        match self.tok {
            Tok::Int(NumberForm::Plain) => plain_number(rest).1,
            Tok::Int(NumberForm::Radix) => radix_number(rest).1,
            _ => 0,
        }
    }
}

// Character classes of ld 2.40's ldlex.l, one bit each.
const FILE1: u8 = 1; // first character of a command-level name
const FILE: u8 = 2; // later characters of a command-level name
const SYM1: u8 = 4; // first character of an expression name
const SYM: u8 = 8; // later characters of an expression name
const WILD: u8 = 16; // characters of a name inside output section braces
const HEX: u8 = 32;

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alpha = b.is_ascii_alphabetic() || b == b'_';
        let digit = b.is_ascii_digit();
        let mut v = 0;
        if alpha || matches!(b, b'/' | b'.' | b'\\' | b'$' | b'~') {
            v |= FILE1;
        }
        if alpha
            || digit
            || matches!(
                b,
                b'/' | b'.' | b'\\' | b'$' | b'~' | b'-' | b'+' | b':' | b'[' | b']' | b',' | b'='
            )
        {
            v |= FILE;
        }
        if alpha || matches!(b, b'.' | b'\\' | b'$') {
            v |= SYM1;
        }
        if alpha || digit || matches!(b, b'/' | b'.' | b'\\' | b'$' | b'~') {
            v |= SYM;
        }
        if (v & FILE) != 0 || matches!(b, b'?' | b'*' | b'^' | b'!') {
            v |= WILD;
        }
        if b.is_ascii_hexdigit() {
            v |= HEX;
        }
        t[c] = v;
        c += 1;
    }
    t
}

static CLASS: [u8; 256] = classes();

fn has(b: u8, class: u8) -> bool {
    CLASS[b as usize] & class != 0
}

type Bytes<'a> = &'a [u8];

/// The rest of a `/* … */` comment after its opening; `None` when it never closes.
fn comment_body(input: Bytes<'_>) -> Option<Bytes<'_>> {
    let found: IResult<Bytes<'_>, Bytes<'_>> = take_until("*/").parse(input);
    found.ok().map(|(rest, _)| &rest[2..])
}

/// `# LINE "FILE" FLAGS…` as cpp leaves it: the line number and the file.
fn line_marker(input: Bytes<'_>) -> IResult<Bytes<'_>, (Bytes<'_>, Bytes<'_>)> {
    let (input, _) = (char('#'), space0).parse(input)?;
    let (input, line) = digit1(input)?;
    let (input, _) = take_while1(|b| b == b' ' || b == b'\t').parse(input)?;
    let (input, _) = tag("\"").parse(input)?;
    let (input, file) = take_while(|b| b != b'"' && b != b'\n').parse(input)?;
    let (input, _) = tag("\"").parse(input)?;
    Ok((input, (line, file)))
}

fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Skips blanks (space, tab, newline, carriage return; not form feed) and comments before a
/// token, recording cpp line markers it passes.
///
/// `markers_seen` is the end of the last recorded marker, so re-lexing the same text in another
/// mode does not record a marker twice.
#[inline]
pub(crate) fn skip_trivia<'a>(
    src: &'a str,
    mut pos: usize,
    mode: Mode,
    markers: &mut Vec<LineMarker<'a>>,
    markers_seen: &mut usize,
) -> Result<usize, Problem> {
    let bytes = src.as_bytes();
    while pos < bytes.len() && is_blank(bytes[pos]) {
        pos += 1;
    }
    match bytes.get(pos) {
        Some(b'/' | b'#') => skip_trivia_slow(src, pos, mode, markers, markers_seen),
        _ => Ok(pos),
    }
}

fn skip_trivia_slow<'a>(
    src: &'a str,
    mut pos: usize,
    mode: Mode,
    markers: &mut Vec<LineMarker<'a>>,
    markers_seen: &mut usize,
) -> Result<usize, Problem> {
    let bytes = src.as_bytes();
    loop {
        while pos < bytes.len() && is_blank(bytes[pos]) {
            pos += 1;
        }
        let rest = &bytes[pos..];
        if !matches!(rest.first(), Some(b'/' | b'#')) {
            return Ok(pos);
        }
        if rest.starts_with(b"/*") {
            match comment_body(&rest[2..]) {
                Some(after) => pos = bytes.len() - after.len(),
                None => {
                    return Err(Problem::new(
                        Span::new(pos, pos + 2),
                        "unterminated comment",
                        "this comment is never closed with `*/`",
                    ));
                }
            }
            continue;
        }
        if rest.first() == Some(&b'#') && mode != Mode::InputList {
            let line_end: IResult<Bytes<'_>, Bytes<'_>> = take_till(|b| b == b'\n').parse(rest);
            let after = line_end.map_or(&rest[rest.len()..], |(after, _)| after);
            let end = bytes.len() - after.len();
            if pos >= *markers_seen {
                if let Ok((_, (line, file))) = line_marker(&rest[..end - pos]) {
                    let line = std::str::from_utf8(line)
                        .ok()
                        .and_then(|l| l.parse().ok())
                        .unwrap_or(u64::MAX);
                    let file_start = file.as_ptr() as usize - bytes.as_ptr() as usize;
                    markers.push(LineMarker {
                        offset: (end + 1).min(bytes.len()),
                        line,
                        file: &src[file_start..file_start + file.len()],
                        span: Span::new(pos, end),
                    });
                }
                *markers_seen = end;
            }
            pos = end;
            continue;
        }
        return Ok(pos);
    }
}

// Which rules can match at a byte, per mode (`START[mode][byte]`).
const INVALID: u8 = 0;
const ONLY_NAME: u8 = 1;
const ONLY_PUNCT: u8 = 2;
const ONLY_NUMBER: u8 = 3;
const QUOTE: u8 = 4;
/// More than one rule can match: the longest-match comparison decides.
const CONTESTED: u8 = 5;

const fn mode_index(mode: Mode) -> usize {
    match mode {
        Mode::Script => 0,
        Mode::Expr => 1,
        Mode::Wild => 2,
        Mode::InputList => 3,
    }
}

const fn starts() -> [[u8; 256]; 4] {
    let modes = [Mode::Script, Mode::Expr, Mode::Wild, Mode::InputList];
    let mut table = [[INVALID; 256]; 4];
    let mut m = 0;
    while m < 4 {
        let bit = match modes[m] {
            Mode::Script => S,
            Mode::Expr => E,
            Mode::Wild => W,
            Mode::InputList => I,
        };
        let mut c = 0;
        while c < 256 {
            let b = c as u8;
            let class = CLASS[c];
            let name = match modes[m] {
                Mode::Script | Mode::InputList => class & FILE1 != 0,
                Mode::Expr => class & SYM1 != 0,
                Mode::Wild => class & WILD != 0,
            };
            // Names with their own rules: `=name` and `-lNAME` in input lists, `/DISCARD/` in
            // expressions.
            let special = matches!(
                (modes[m], b),
                (Mode::InputList, b'=' | b'-') | (Mode::Expr, b'/')
            );
            let number = match modes[m] {
                Mode::Expr => b.is_ascii_hexdigit() || b == b'$',
                Mode::Script => b.is_ascii_digit() || b == b'$',
                _ => false,
            };
            let mut punct = false;
            let mut i = 0;
            while i < PUNCTS.len() {
                if PUNCTS[i].1[0] == b && PUNCTS[i].2 & bit != 0 {
                    punct = true;
                }
                i += 1;
            }
            table[m][c] = if b == b'"' {
                QUOTE
            } else if special {
                CONTESTED
            } else {
                match (name, punct, number) {
                    (false, false, false) => INVALID,
                    (true, false, false) => ONLY_NAME,
                    (false, true, false) => ONLY_PUNCT,
                    (false, false, true) => ONLY_NUMBER,
                    _ => CONTESTED,
                }
            };
            c += 1;
        }
        m += 1;
    }
    table
}

static START: [[u8; 256]; 4] = starts();

/// Lexes the token starting exactly at `pos` (trivia already skipped).
///
/// Most bytes can begin only one kind of token in a given mode; those take a direct path, and
/// the rest go through the full longest-match comparison.
#[inline]
pub(crate) fn token_at(src: &str, pos: usize, mode: Mode) -> Result<Token, Problem> {
    let bytes = src.as_bytes();
    let Some(&first) = bytes.get(pos) else {
        return Ok(Token::new(Tok::Eof, pos, pos));
    };
    let token = |tok, len: usize| Token::new(tok, pos, pos + len);
    match START[mode_index(mode)][first as usize] {
        ONLY_NAME => {
            let rest = &bytes[pos..];
            let class = match mode {
                Mode::Expr => SYM,
                Mode::Wild => WILD,
                Mode::Script | Mode::InputList => FILE,
            };
            let len = run(rest, 1, class);
            return Ok(token(word(&rest[..len], mode), len));
        }
        ONLY_PUNCT => {
            if let Some((p, len)) = punct(&bytes[pos..], mode) {
                return Ok(token(Tok::Punct(p), len));
            }
        }
        ONLY_NUMBER => {
            let (len, form) = number(&bytes[pos..], mode);
            if len > 0 {
                return Ok(token(Tok::Int(form), len));
            }
        }
        QUOTE => return quoted(src, pos),
        CONTESTED => {
            let rest = &bytes[pos..];
            match mode {
                // Operators against names (`*` against `*=`); ties go to the operator.
                Mode::Wild => {
                    let len = run(rest, 1, WILD);
                    return Ok(match punct(rest, mode) {
                        Some((p, plen)) if plen >= len => token(Tok::Punct(p), plen),
                        _ => token(word(&rest[..len], mode), len),
                    });
                }
                // Numbers against names (`1000h` against `ALIGN`); ties go to the number.
                Mode::Expr if first.is_ascii_alphabetic() => {
                    let len = run(rest, 1, SYM);
                    let num_len = radix_number(rest).0;
                    return Ok(if num_len >= len {
                        token(Tok::Int(NumberForm::Radix), num_len)
                    } else {
                        token(word(&rest[..len], mode), len)
                    });
                }
                _ => {}
            }
        }
        _ => {}
    }
    longest_match(src, pos, mode)
}

/// A `"…"` string at `pos`.
fn quoted(src: &str, pos: usize) -> Result<Token, Problem> {
    match memchr_quote(&src.as_bytes()[pos + 1..]) {
        Some(len) => Ok(Token::new(Tok::Quoted, pos, pos + len + 2)),
        None => Err(Problem::new(
            Span::new(pos, pos + 1),
            "unterminated string",
            "this quote is never closed",
        )),
    }
}

/// A name's token: a keyword when `text` is one in `mode`.
#[inline]
fn word(text: &[u8], mode: Mode) -> Tok {
    // Keywords are upper case apart from `o`, `org`, `l`, `len` and `chip`.
    let maybe_keyword =
        text[0].is_ascii_uppercase() || (text.len() <= 4 && matches!(text[0], b'o' | b'l' | b'c'));
    if maybe_keyword
        && let Some((kw, modes)) = Kw::lookup(text)
        && modes & mode.bit() != 0
    {
        return Tok::Kw(kw);
    }
    Tok::Name
}

/// End of the run of `class` bytes in `rest` from `from`.
#[inline]
fn run(rest: &[u8], from: usize, class: u8) -> usize {
    let mut i = from;
    while i < rest.len() && has(rest[i], class) {
        i += 1;
    }
    i
}

/// The number rule of `mode` at `rest`: its length (0 when none) and which rule matched.
fn number(rest: &[u8], mode: Mode) -> (usize, NumberForm) {
    let first = rest[0];
    if first.is_ascii_digit() && matches!(mode, Mode::Expr | Mode::Script) {
        // Plain decimal or octal digits not followed by a letter or digit: no suffix, radix
        // or `0x` form can apply.
        let len = run_digits(rest);
        if !rest.get(len).is_some_and(u8::is_ascii_alphanumeric) {
            return (len, NumberForm::Plain);
        }
    }
    let numeric = first.is_ascii_digit() || first == b'$';
    match mode {
        Mode::Expr if first.is_ascii_hexdigit() || first == b'$' => {
            let radix = radix_number(rest).0;
            let plain = if numeric { plain_number(rest).0 } else { 0 };
            if radix >= plain {
                (radix, NumberForm::Radix)
            } else {
                (plain, NumberForm::Plain)
            }
        }
        Mode::Script if numeric => (plain_number(rest).0, NumberForm::Plain),
        _ => (0, NumberForm::Plain),
    }
}

fn run_digits(rest: &[u8]) -> usize {
    let mut i = 0;
    while i < rest.len() && rest[i].is_ascii_digit() {
        i += 1;
    }
    i
}

/// The token at `pos` by flex's rule over every candidate (trivia already skipped).
fn longest_match(src: &str, pos: usize, mode: Mode) -> Result<Token, Problem> {
    let bytes = src.as_bytes();
    let rest = &bytes[pos..];
    let first = rest[0];
    if first == b'"' {
        return quoted(src, pos);
    }

    // Each candidate rule's match length; the longest wins, earlier rules win ties.
    let (num_len, form) = number(rest, mode);
    let punct = punct(rest, mode);
    let punct_len = punct.map_or(0, |(_, len)| len);
    let (name_len, library) = name_len(rest, mode);

    let best = num_len.max(punct_len).max(name_len);
    let token = |tok, len: usize| Token::new(tok, pos, pos + len);
    if best == 0 {
        let ch = src[pos..].chars().next().unwrap_or('\u{fffd}');
        let shown = if ch.is_control() {
            format!("{}", ch.escape_default())
        } else {
            ch.to_string()
        };
        return Err(Problem::new(
            Span::new(pos, pos + ch.len_utf8()),
            format!("invalid character `{shown}` {}", mode.place()),
            "ld cannot read this character here",
        ));
    }
    if num_len == best {
        return Ok(token(Tok::Int(form), best));
    }
    if let Some((p, len)) = punct
        && len == best
    {
        return Ok(token(Tok::Punct(p), best));
    }
    if library {
        return Ok(token(Tok::Library, best));
    }
    Ok(token(word(&rest[..best], mode), best))
}

fn memchr_quote(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'"')
}

/// For each first byte, the operators starting with it, longest first (indices into
/// `PUNCTS` plus one; 0 ends the list).
const fn punct_index() -> [[u8; 4]; 256] {
    let mut table = [[0u8; 4]; 256];
    let mut i = 0;
    while i < PUNCTS.len() {
        let first = PUNCTS[i].1[0] as usize;
        let mut k = 0;
        while table[first][k] != 0 {
            k += 1;
        }
        table[first][k] = (i + 1) as u8;
        i += 1;
    }
    table
}

static PUNCT_INDEX: [[u8; 4]; 256] = punct_index();

const fn second_bytes() -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < PUNCTS.len() {
        if PUNCTS[i].1.len() > 1 {
            table[PUNCTS[i].1[1] as usize] = true;
        }
        i += 1;
    }
    table
}

/// Bytes that appear second in some operator: only after one of them can an operator be
/// longer than one byte.
static PUNCT_SECOND: [bool; 256] = second_bytes();

const fn single_puncts() -> [[u8; 256]; 4] {
    let bits = [S, E, W, I];
    let mut table = [[0u8; 256]; 4];
    let mut i = 0;
    while i < PUNCTS.len() {
        if PUNCTS[i].1.len() == 1 {
            let mut m = 0;
            while m < 4 {
                if PUNCTS[i].2 & bits[m] != 0 {
                    table[m][PUNCTS[i].1[0] as usize] = (i + 1) as u8;
                }
                m += 1;
            }
        }
        i += 1;
    }
    table
}

/// Per mode and byte, the one-byte operator it is (index into `PUNCTS` plus one; 0 for none).
static PUNCT_SINGLE: [[u8; 256]; 4] = single_puncts();

/// Longest operator enabled in `mode` at the start of `rest` (`PUNCTS` lists longer
/// operators first).
#[inline]
fn punct(rest: &[u8], mode: Mode) -> Option<(P, usize)> {
    if rest.len() < 2 || !PUNCT_SECOND[rest[1] as usize] {
        let slot = PUNCT_SINGLE[mode_index(mode)][rest[0] as usize];
        return (slot != 0).then(|| (PUNCTS[slot as usize - 1].0, 1));
    }
    punct_any(rest, mode.bit())
}

fn punct_any(rest: &[u8], mode: u8) -> Option<(P, usize)> {
    for &slot in &PUNCT_INDEX[rest[0] as usize] {
        if slot == 0 {
            return None;
        }
        let (p, text, modes) = PUNCTS[slot as usize - 1];
        if modes & mode != 0
            && rest.len() >= text.len()
            && text.iter().zip(rest).all(|(a, b)| a == b)
        {
            return Some((p, text.len()));
        }
    }
    None
}

/// Length of the mode's name rule at `rest`, and whether it is an input-list `-l` library.
fn name_len(rest: &[u8], mode: Mode) -> (usize, bool) {
    let run = |from: usize, class: u8| run(rest, from, class);
    match mode {
        Mode::Script | Mode::InputList => {
            if has(rest[0], FILE1) {
                return (run(1, FILE), false);
            }
            if mode == Mode::InputList {
                if rest[0] == b'=' && rest.len() > 1 && has(rest[1], FILE1) {
                    return (run(2, FILE), false);
                }
                if rest.starts_with(b"-l") {
                    let len = run(2, FILE);
                    if len > 2 {
                        return (len, true);
                    }
                }
            }
            (0, false)
        }
        Mode::Expr => {
            let len = if has(rest[0], SYM1) { run(1, SYM) } else { 0 };
            // ld special-cases `/DISCARD/` so a fill expression does not divide by it.
            if len == 0 && rest.starts_with(b"/DISCARD/") {
                return (9, false);
            }
            (len, false)
        }
        Mode::Wild => (run(0, WILD), false),
    }
}

/// ld's `$hex`, `0xhex`, decimal and leading-zero octal numbers with an optional `K`/`M`.
fn plain_number(rest: &[u8]) -> (usize, u64) {
    let hex_run = |from: usize| {
        rest[from..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count()
    };
    let (len, value) = if rest[0] == b'$' {
        let n = hex_run(1);
        if n == 0 {
            return (0, 0);
        }
        (1 + n, scan_digits(&rest[1..1 + n], 16))
    } else if rest.len() > 2 && rest[0] == b'0' && matches!(rest[1], b'x' | b'X') && {
        rest[2].is_ascii_hexdigit()
    } {
        let n = hex_run(2);
        (2 + n, scan_digits(&rest[2..2 + n], 16))
    } else {
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return (0, 0);
        }
        let digits = &rest[..n];
        let value = if digits[0] == b'0' {
            scan_digits(digits, 8)
        } else {
            scan_digits(digits, 10)
        };
        (n, value)
    };
    match rest.get(len) {
        Some(b'K' | b'k') => (len + 1, value.wrapping_mul(1024)),
        Some(b'M' | b'm') => (len + 1, value.wrapping_mul(1024 * 1024)),
        _ => (len, value),
    }
}

/// ld's expression-only `digits` + radix letter: `h`/`x` hex, `o` octal, `b` binary, `d`
/// decimal. The digits are any hex digits; `b` and `d` are hex digits themselves, so the match
/// ends at the last one that can serve as the suffix.
fn radix_number(rest: &[u8]) -> (usize, u64) {
    let run = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if run == 0 {
        return (0, 0);
    }
    let len = match rest.get(run) {
        Some(b'H' | b'h' | b'X' | b'x' | b'O' | b'o') => run + 1,
        _ => match (1..run)
            .rev()
            .find(|&j| matches!(rest[j], b'B' | b'b' | b'D' | b'd'))
        {
            Some(j) => j + 1,
            None => return (0, 0),
        },
    };
    let base = match rest[len - 1] {
        b'H' | b'h' | b'X' | b'x' => 16,
        b'O' | b'o' => 8,
        b'B' | b'b' => 2,
        _ => 10,
    };
    (len, scan_digits(&rest[..len - 1], base))
}

/// Reads digits as C's `strtoul` does: stops at the first digit invalid in `base` and
/// saturates on overflow.
fn scan_digits(digits: &[u8], base: u32) -> u64 {
    let mut value: u64 = 0;
    for &b in digits {
        let Some(d) = (b as char).to_digit(base) else {
            break;
        };
        value = match value
            .checked_mul(u64::from(base))
            .and_then(|v| v.checked_add(u64::from(d)))
        {
            Some(v) => v,
            None => return u64::MAX,
        };
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lex_all(src: &str, mode: Mode) -> Vec<(Tok, &str)> {
        let mut out = Vec::new();
        let mut pos = 0;
        let mut markers = Vec::new();
        let mut seen = 0;
        loop {
            pos = skip_trivia(src, pos, mode, &mut markers, &mut seen).expect("trivia");
            let t = token_at(src, pos, mode).expect("token");
            if t.tok == Tok::Eof {
                return out;
            }
            out.push((t.tok, t.text(src)));
            pos = t.end();
        }
    }

    #[test]
    fn names_follow_the_mode() {
        assert_eq!(lex_all("a-b", Mode::Script), vec![(Tok::Name, "a-b")]);
        assert_eq!(
            lex_all("a-b", Mode::Expr),
            vec![
                (Tok::Name, "a"),
                (Tok::Punct(P::Minus), "-"),
                (Tok::Name, "b")
            ]
        );
        assert_eq!(lex_all("a/b", Mode::Expr), vec![(Tok::Name, "a/b")]);
        assert_eq!(
            lex_all("*(.text.*)", Mode::Wild),
            vec![
                (Tok::Name, "*"),
                (Tok::Punct(P::LParen), "("),
                (Tok::Name, ".text.*"),
                (Tok::Punct(P::RParen), ")")
            ]
        );
        assert_eq!(lex_all(".=ALIGN", Mode::Wild), vec![(Tok::Name, ".=ALIGN")]);
        assert_eq!(lex_all("-lc", Mode::InputList), vec![(Tok::Library, "c")]);
    }

    #[test]
    fn keywords_only_in_their_modes() {
        assert_eq!(
            lex_all("SORT", Mode::Wild),
            vec![(Tok::Kw(Kw::Sort), "SORT")]
        );
        assert_eq!(lex_all("SORT", Mode::Expr), vec![(Tok::Name, "SORT")]);
        assert_eq!(
            lex_all("l", Mode::Script),
            vec![(Tok::Kw(Kw::LengthL), "l")]
        );
        assert_eq!(lex_all("l", Mode::Expr), vec![(Tok::Name, "l")]);
        assert_eq!(lex_all("ALIGNED", Mode::Expr), vec![(Tok::Name, "ALIGNED")]);
    }

    #[test]
    fn direct_paths_agree_with_longest_match() {
        // Every three-byte text over bytes that start, continue or end tokens, then longer
        // forms with their own rules followed by each of those bytes, in every mode.
        let alphabet = b" aAfFhHxXoObBdDkKlL09_.$/\\~-+*=!<>|&^?:;,()[]{}\"#%@\t";
        let mut texts = Vec::new();
        for &a in alphabet {
            for &b in alphabet {
                for &c in alphabet {
                    texts.push(vec![a, b, c]);
                }
            }
        }
        for form in [
            "/DISCARD/",
            "-lgcc",
            "=sysroot",
            "0x1fK",
            "$ffM",
            "1000h",
            "77o",
            "0x",
        ] {
            for &c in alphabet {
                texts.push([form.as_bytes(), &[c]].concat());
            }
        }
        for mode in [Mode::Script, Mode::Expr, Mode::Wild, Mode::InputList] {
            for bytes in &texts {
                let text = std::str::from_utf8(bytes).expect("ascii");
                // Debug output, because spans do not take part in equality.
                let direct = format!("{:?}", token_at(text, 0, mode));
                let full = format!("{:?}", longest_match(text, 0, mode));
                assert_eq!(direct, full, "{text:?} in {mode:?}");
            }
        }
    }

    #[test]
    fn line_markers_are_comments() {
        let src = "# 12 \"include/x.h\" 1 2\nfoo";
        let mut markers = Vec::new();
        let mut seen = 0;
        let pos = skip_trivia(src, 0, Mode::Script, &mut markers, &mut seen).expect("skip");
        assert_eq!(&src[pos..], "foo");
        assert_eq!(markers.len(), 1);
        assert_eq!((markers[0].line, markers[0].file), (12, "include/x.h"));
        skip_trivia(src, 0, Mode::Expr, &mut markers, &mut seen).expect("skip again");
        assert_eq!(markers.len(), 1, "re-lexing must not duplicate markers");
    }
}
