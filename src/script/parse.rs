//! The linker-script parser: GNU ld 2.40's command language into the [`ast`](super::ast).
//!
//! A recursive-descent reading of ld's `ldgram.y` over the moded tokens of the `lex` module
//! (nom recognises the lexemes). Each grammar position lexes in the mode ld's parser would have
//! set there, including ld's lookahead quirks: the token after an output section's name is read
//! in command mode, and the token after an expression is read in expression mode and only
//! re-read when it is a name (`ldlex_backup`). It builds the tree and reports the first error;
//! it does not evaluate anything or follow `INCLUDE`.

use std::fmt;

use super::ast::*;
use super::diag::{ParseError, Problem};
use super::lex::{Kw, Mode, P, Tok, Token, skip_trivia, token_at};

pub use super::lex::KEYWORDS;

/// Names that are not keywords for ld's lexer but that the grammar gives a meaning in one
/// place (PHDRS qualifiers and types, `CONSTANT` operands). Listed so the grammar file can be
/// checked against them as well.
pub const CONTEXTUAL_NAMES: &[&str] = &[
    "FILEHDR",
    "FLAGS",
    "MAXPAGESIZE",
    "COMMONPAGESIZE",
    "PT_NULL",
    "PT_LOAD",
    "PT_DYNAMIC",
    "PT_INTERP",
    "PT_NOTE",
    "PT_SHLIB",
    "PT_PHDR",
    "PT_TLS",
    "PT_GNU_EH_FRAME",
    "PT_GNU_STACK",
    "PT_GNU_RELRO",
    "PT_GNU_PROPERTY",
];

/// Deepest nesting of expressions and `AS_NEEDED` lists accepted, so hostile input cannot
/// exhaust the stack.
pub const MAX_NESTING: usize = 128;

/// Parses a whole linker script. Names and numbers in the tree borrow from `src`.
pub fn parse_script<'a>(src: &'a str) -> Result<Script<'a>, ParseError> {
    if u32::try_from(src.len()).is_err() {
        let problem = Problem::new(
            Span::new(0, 0),
            "the script is 4 GiB or larger; spans are 32-bit offsets",
            "this script",
        );
        return Err(ParseError::located(problem, src));
    }
    let mut parser = Parser::new(src);
    match parser.script() {
        Ok(commands) => Ok(Script {
            commands,
            line_markers: parser.markers,
        }),
        Err(problem) => Err(ParseError::located(problem, src)),
    }
}

type PResult<T> = Result<T, Problem>;

const CACHE_SLOTS: usize = 2;

/// How many SECTIONS items are gathered per chunk before the list is assembled.
const ITEM_CHUNK: usize = 16;

struct Parser<'a> {
    src: &'a str,
    /// End of the last consumed token.
    pos: usize,
    /// A lookahead token ld's parser has already read in an earlier mode; used as is.
    sticky: Option<Token>,
    /// Recently lexed tokens keyed by position and mode: one-token lookahead and the few
    /// places that look two tokens ahead then rewind would otherwise lex twice.
    cache_keys: [(usize, Mode); CACHE_SLOTS],
    cache_tokens: [Token; CACHE_SLOTS],
    cache_next: usize,
    markers: Vec<LineMarker<'a>>,
    markers_seen: usize,
    depth: usize,
    /// Scratch list the statements of an output section body grow in, so each finished body
    /// is allocated once at its exact size instead of being reallocated as it grows.
    statements: Vec<SectionStatement<'a>>,
}

#[derive(Clone, Copy)]
struct Saved {
    pos: usize,
    sticky: Option<Token>,
}

fn describe(t: Token, src: &str) -> String {
    match t.tok {
        Tok::Name => format!("`{}`", t.text(src)),
        Tok::Quoted => format!("\"{}\"", t.text(src)),
        Tok::Library => format!("`-l{}`", t.text(src)),
        Tok::Int(_) => "a number".to_owned(),
        Tok::Kw(k) => format!("keyword `{}`", k.as_str()),
        Tok::Punct(p) => format!("`{}`", p.as_str()),
        Tok::Eof => "end of file".to_owned(),
    }
}

fn assign_op(tok: Tok) -> Option<AssignOp> {
    Some(match tok {
        Tok::Punct(P::Eq) => AssignOp::Set,
        Tok::Punct(P::PlusEq) => AssignOp::Add,
        Tok::Punct(P::MinusEq) => AssignOp::Sub,
        Tok::Punct(P::MulEq) => AssignOp::Mul,
        Tok::Punct(P::DivEq) => AssignOp::Div,
        Tok::Punct(P::ShlEq) => AssignOp::Shl,
        Tok::Punct(P::ShrEq) => AssignOp::Shr,
        Tok::Punct(P::AndEq) => AssignOp::And,
        Tok::Punct(P::OrEq) => AssignOp::Or,
        Tok::Punct(P::XorEq) => AssignOp::Xor,
        _ => return None,
    })
}

fn binary_op(tok: Tok) -> Option<BinaryOp> {
    let Tok::Punct(p) = tok else {
        return None;
    };
    Some(match p {
        P::Star => BinaryOp::Mul,
        P::Slash => BinaryOp::Div,
        P::Percent => BinaryOp::Rem,
        P::Plus => BinaryOp::Add,
        P::Minus => BinaryOp::Sub,
        P::Shl => BinaryOp::Shl,
        P::Shr => BinaryOp::Shr,
        P::Lt => BinaryOp::Lt,
        P::Le => BinaryOp::Le,
        P::Gt => BinaryOp::Gt,
        P::Ge => BinaryOp::Ge,
        P::EqEq => BinaryOp::Eq,
        P::Ne => BinaryOp::Ne,
        P::Amp => BinaryOp::BitAnd,
        P::Caret => BinaryOp::BitXor,
        P::Pipe => BinaryOp::BitOr,
        P::AndAnd => BinaryOp::And,
        P::OrOr => BinaryOp::Or,
        _ => return None,
    })
}

fn sort_key(tok: Tok) -> Option<SortKey> {
    match tok {
        Tok::Kw(Kw::Sort | Kw::SortByName) => Some(SortKey::Name),
        Tok::Kw(Kw::SortByAlignment) => Some(SortKey::Alignment),
        Tok::Kw(Kw::SortByInitPriority) => Some(SortKey::InitPriority),
        Tok::Kw(Kw::SortNone) => Some(SortKey::None),
        Tok::Kw(Kw::Reverse) => Some(SortKey::Reverse),
        _ => None,
    }
}

fn sort_name(key: SortKey) -> &'static str {
    match key {
        SortKey::Name => "SORT_BY_NAME",
        SortKey::Alignment => "SORT_BY_ALIGNMENT",
        SortKey::InitPriority => "SORT_BY_INIT_PRIORITY",
        SortKey::None => "SORT_NONE",
        SortKey::Reverse => "REVERSE",
    }
}

/// The nestings ld 2.40's grammar allows for a section pattern, plus `REVERSE` (from later ld)
/// as the outermost or innermost wrapper.
fn valid_section_sort(keys: &[SortKey]) -> bool {
    let plain: Vec<SortKey> = keys
        .iter()
        .copied()
        .filter(|&k| k != SortKey::Reverse)
        .collect();
    let reverses = keys.len() - plain.len();
    let reverse_ok = match reverses {
        0 => true,
        1 => keys.first() == Some(&SortKey::Reverse) || keys.last() == Some(&SortKey::Reverse),
        _ => false,
    };
    let by_name_or_alignment = |k: &SortKey| matches!(k, SortKey::Name | SortKey::Alignment);
    reverse_ok
        && match plain.len() {
            0 | 1 => true,
            2 => plain.iter().all(by_name_or_alignment),
            _ => false,
        }
}

const PHDR_TYPES: &[&str] = &[
    "PT_NULL",
    "PT_LOAD",
    "PT_DYNAMIC",
    "PT_INTERP",
    "PT_NOTE",
    "PT_SHLIB",
    "PT_PHDR",
    "PT_TLS",
    "PT_GNU_EH_FRAME",
    "PT_GNU_STACK",
    "PT_GNU_RELRO",
    "PT_GNU_PROPERTY",
];

/// `(FOO)` after an output section name where FOO looks like a keyword: ld would silently take
/// it as an address expression, which is almost always a misspelt section type.
fn looks_like_type_keyword(text: &str) -> bool {
    text.bytes().any(|b| b.is_ascii_uppercase())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser {
            src,
            pos: 0,
            sticky: None,
            cache_keys: [(usize::MAX, Mode::Script); CACHE_SLOTS],
            cache_tokens: [Token::new(Tok::Eof, 0, 0); CACHE_SLOTS],
            cache_next: 0,
            markers: Vec::new(),
            markers_seen: 0,
            depth: 0,
            statements: Vec::new(),
        }
    }

    // ----- token plumbing -----

    #[inline(always)]
    fn peek(&mut self, mode: Mode) -> PResult<Token> {
        if let Some(t) = self.sticky {
            return Ok(t);
        }
        let last = (self.cache_next + CACHE_SLOTS - 1) % CACHE_SLOTS;
        if self.cache_keys[last] == (self.pos, mode) {
            return Ok(self.cache_tokens[last]);
        }
        self.peek_slow(mode)
    }

    #[inline(never)]
    fn peek_slow(&mut self, mode: Mode) -> PResult<Token> {
        let key = (self.pos, mode);
        if let Some(slot) = self.cache_keys.iter().position(|&k| k == key) {
            return Ok(self.cache_tokens[slot]);
        }
        let start = skip_trivia(
            self.src,
            self.pos,
            mode,
            &mut self.markers,
            &mut self.markers_seen,
        )?;
        let t = token_at(self.src, start, mode)?;
        self.cache_keys[self.cache_next] = key;
        self.cache_tokens[self.cache_next] = t;
        self.cache_next = (self.cache_next + 1) % CACHE_SLOTS;
        Ok(t)
    }

    fn bump(&mut self, t: Token) {
        self.pos = t.end();
        self.sticky = None;
    }

    fn next(&mut self, mode: Mode) -> PResult<Token> {
        let t = self.peek(mode)?;
        self.bump(t);
        Ok(t)
    }

    fn save(&self) -> Saved {
        Saved {
            pos: self.pos,
            sticky: self.sticky,
        }
    }

    fn restore(&mut self, saved: Saved) {
        self.pos = saved.pos;
        self.sticky = saved.sticky;
    }

    /// ld's `ldlex_backup`: a name read as expression lookahead is read again in the new mode.
    fn backup_name(&mut self) {
        if let Some(Token {
            tok: Tok::Name | Tok::Quoted,
            ..
        }) = self.sticky
        {
            self.sticky = None;
        }
    }

    fn eat(&mut self, mode: Mode, p: P) -> PResult<Option<Token>> {
        let t = self.peek(mode)?;
        if t.tok == Tok::Punct(p) {
            self.bump(t);
            Ok(Some(t))
        } else {
            Ok(None)
        }
    }

    fn eat_kw(&mut self, mode: Mode, kw: Kw) -> PResult<Option<Token>> {
        let t = self.peek(mode)?;
        if t.tok == Tok::Kw(kw) {
            self.bump(t);
            Ok(Some(t))
        } else {
            Ok(None)
        }
    }

    fn unexpected(&self, t: Token, expected: impl fmt::Display) -> Problem {
        let label = match t.tok {
            Tok::Eof => "the script ends here".to_owned(),
            _ => format!("found {}", describe(t, self.src)),
        };
        let span = if t.tok == Tok::Eof {
            Span::new(t.start.saturating_sub(1), t.start)
        } else {
            t.span()
        };
        Problem::new(span, format!("expected {expected}"), label)
    }

    fn expect(&mut self, mode: Mode, p: P, context: fmt::Arguments<'_>) -> PResult<Token> {
        let t = self.peek(mode)?;
        if t.tok == Tok::Punct(p) {
            self.bump(t);
            Ok(t)
        } else {
            Err(self.unexpected(t, format_args!("`{}` {context}", p.as_str())))
        }
    }

    fn expect_kw(&mut self, mode: Mode, kw: Kw, context: fmt::Arguments<'_>) -> PResult<Token> {
        let t = self.peek(mode)?;
        if t.tok == Tok::Kw(kw) {
            self.bump(t);
            Ok(t)
        } else {
            Err(self.unexpected(t, format_args!("`{}` {context}", kw.as_str())))
        }
    }

    /// The text of a name, string or library token.
    fn text(&self, t: Token) -> &'a str {
        t.text(self.src)
    }

    /// The AST name a name or string token stands for.
    fn name_of(&self, t: Token) -> Name<'a> {
        Name {
            text: self.text(t),
            quoted: t.tok == Tok::Quoted,
            span: t.span(),
        }
    }

    /// A name token (ld's NAME: unquoted in the mode's character class, or quoted).
    fn name(&mut self, mode: Mode, what: &str) -> PResult<Name<'a>> {
        let t = self.peek(mode)?;
        if !matches!(t.tok, Tok::Name | Tok::Quoted) {
            return Err(self.unexpected(t, what));
        }
        self.bump(t);
        Ok(self.name_of(t))
    }

    fn pattern(&mut self, what: &str) -> PResult<Pattern<'a>> {
        let n = self.name(Mode::Wild, what)?;
        Ok(Pattern {
            text: n.text,
            quoted: n.quoted,
            span: n.span,
        })
    }

    /// `( NAME )` in `mode`.
    fn paren_name(&mut self, mode: Mode, keyword: &str, what: &str) -> PResult<Name<'a>> {
        self.expect(mode, P::LParen, format_args!("after `{keyword}`"))?;
        let name = self.name(mode, what)?;
        self.expect(mode, P::RParen, format_args!("to close `{keyword}(`"))?;
        Ok(name)
    }

    fn enter(&mut self, at: Span) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(Problem::new(
                at,
                format!("nesting deeper than {MAX_NESTING} levels"),
                "too deeply nested",
            )
            .with_help("split the expression or list into smaller parts"));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn unsupported(&self, t: Token, what: impl fmt::Display) -> Problem {
        Problem::new(
            t.span(),
            format!("ldcheck does not support {what}"),
            "ld accepts this, but ldcheck cannot model it",
        )
    }

    // ----- top level -----

    fn script(&mut self) -> PResult<Vec<Command<'a>>> {
        let mut commands = Vec::new();
        loop {
            let t = self.peek(Mode::Script)?;
            let start = t.start;
            let kind = match t.tok {
                Tok::Eof => return Ok(commands),
                Tok::Punct(P::Semi) => {
                    self.bump(t);
                    continue;
                }
                Tok::Name | Tok::Quoted => {
                    let a = self.assignment(Mode::Script)?;
                    self.separator(Mode::Script)?;
                    CommandKind::Assignment(a)
                }
                Tok::Kw(kw) => self.command(t, kw)?,
                _ => return Err(self.unexpected(t, "a command or an assignment")),
            };
            commands.push(Command {
                kind,
                span: Span::new(start, self.pos),
            });
        }
    }

    fn command(&mut self, t: Token, kw: Kw) -> PResult<CommandKind<'a>> {
        const S: Mode = Mode::Script;
        Ok(match kw {
            Kw::Sections => {
                self.bump(t);
                CommandKind::Sections(self.sections(t)?)
            }
            Kw::Memory => {
                self.bump(t);
                CommandKind::Memory(self.memory()?)
            }
            Kw::Phdrs => {
                self.bump(t);
                CommandKind::Phdrs(self.phdrs()?)
            }
            Kw::Entry => {
                self.bump(t);
                CommandKind::Entry(self.paren_name(S, "ENTRY", "a symbol name")?)
            }
            Kw::Assert => CommandKind::Assert(self.assert_statement()?),
            Kw::Provide | Kw::ProvideHidden | Kw::Hidden => {
                let a = self.assignment(S)?;
                self.separator(S)?;
                CommandKind::Assignment(a)
            }
            Kw::OutputFormat => {
                self.bump(t);
                self.expect(S, P::LParen, format_args!("after `OUTPUT_FORMAT`"))?;
                let default = self.name(S, "an output format name")?;
                let (big, little) = if self.eat(S, P::Comma)?.is_some() {
                    let big = self.name(S, "the big-endian format name")?;
                    self.expect(S, P::Comma, format_args!("between OUTPUT_FORMAT names"))
                        .map_err(|e| e.with_help("OUTPUT_FORMAT takes one name or three"))?;
                    let little = self.name(S, "the little-endian format name")?;
                    (Some(big), Some(little))
                } else {
                    (None, None)
                };
                self.expect(S, P::RParen, format_args!("to close `OUTPUT_FORMAT(`"))?;
                CommandKind::OutputFormat {
                    default,
                    big,
                    little,
                }
            }
            Kw::OutputArch => {
                self.bump(t);
                CommandKind::OutputArch(self.paren_name(S, "OUTPUT_ARCH", "an architecture")?)
            }
            Kw::Output => {
                self.bump(t);
                CommandKind::Output(self.paren_name(S, "OUTPUT", "a file name")?)
            }
            Kw::Target => {
                self.bump(t);
                CommandKind::Target(self.paren_name(S, "TARGET", "a target name")?)
            }
            Kw::SearchDir => {
                self.bump(t);
                CommandKind::SearchDir(self.paren_name(S, "SEARCH_DIR", "a directory")?)
            }
            Kw::Startup => {
                self.bump(t);
                CommandKind::Startup(self.paren_name(S, "STARTUP", "a file name")?)
            }
            Kw::Map => {
                self.bump(t);
                CommandKind::Map(self.paren_name(S, "MAP", "a file name")?)
            }
            Kw::LdFeature => {
                self.bump(t);
                CommandKind::LdFeature(self.paren_name(S, "LD_FEATURE", "a feature name")?)
            }
            Kw::Include => {
                self.bump(t);
                CommandKind::Include(self.name(S, "a file name after `INCLUDE`")?)
            }
            Kw::Input | Kw::Group => {
                self.bump(t);
                self.expect(S, P::LParen, format_args!("after `{}`", kw.as_str()))?;
                let files = self.input_list(t.span())?;
                self.expect(
                    Mode::InputList,
                    P::RParen,
                    format_args!("to close `{}(`", kw.as_str()),
                )?;
                if kw == Kw::Input {
                    CommandKind::Input(files)
                } else {
                    CommandKind::Group(files)
                }
            }
            Kw::Extern => {
                self.bump(t);
                self.expect(S, P::LParen, format_args!("after `EXTERN`"))?;
                let mut names = vec![self.name(Mode::Expr, "a symbol name")?];
                loop {
                    if self.eat(Mode::Expr, P::RParen)?.is_some() {
                        break;
                    }
                    self.eat(Mode::Expr, P::Comma)?;
                    names.push(self.name(Mode::Expr, "a symbol name or `)`")?);
                }
                CommandKind::Extern(names)
            }
            Kw::ForceCommonAllocation => {
                self.bump(t);
                CommandKind::ForceCommonAllocation
            }
            Kw::ForceGroupAllocation => {
                self.bump(t);
                CommandKind::ForceGroupAllocation
            }
            Kw::InhibitCommonAllocation => {
                self.bump(t);
                CommandKind::InhibitCommonAllocation
            }
            Kw::NoCrossRefs | Kw::NoCrossRefsTo => {
                self.bump(t);
                self.expect(S, P::LParen, format_args!("after `{}`", kw.as_str()))?;
                let mut names = Vec::new();
                loop {
                    if self.eat(S, P::RParen)?.is_some() {
                        break;
                    }
                    names.push(self.name(S, "a section name or `)`")?);
                    self.eat(S, P::Comma)?;
                }
                if kw == Kw::NoCrossRefs {
                    CommandKind::NoCrossRefs(names)
                } else {
                    CommandKind::NoCrossRefsTo(names)
                }
            }
            Kw::RegionAlias => {
                self.bump(t);
                self.expect(S, P::LParen, format_args!("after `REGION_ALIAS`"))?;
                let alias = self.name(S, "the alias name")?;
                self.expect(
                    S,
                    P::Comma,
                    format_args!("between the alias and the region"),
                )?;
                let region = self.name(S, "a memory region name")?;
                self.expect(S, P::RParen, format_args!("to close `REGION_ALIAS(`"))?;
                CommandKind::RegionAlias { alias, region }
            }
            Kw::Insert => {
                self.bump(t);
                let at = self.peek(S)?;
                let position = match at.tok {
                    Tok::Kw(Kw::After) => InsertPosition::After,
                    Tok::Kw(Kw::Before) => InsertPosition::Before,
                    _ => return Err(self.unexpected(at, "`AFTER` or `BEFORE` after `INSERT`")),
                };
                self.bump(at);
                let section = self.name(S, "an output section name")?;
                CommandKind::Insert { position, section }
            }
            Kw::Version => return Err(self.unsupported(t, "`VERSION` commands")),
            Kw::Hll | Kw::Syslib | Kw::Float | Kw::NoFloat | Kw::Chip | Kw::ChipLower => {
                return Err(self.unsupported(t, format_args!("the obsolete `{}`", kw.as_str())));
            }
            _ => return Err(self.unexpected(t, "a command or an assignment")),
        })
    }

    /// `;` or `,` after an assignment. The token was usually read as expression lookahead.
    fn separator(&mut self, mode: Mode) -> PResult<()> {
        let t = self.peek(mode)?;
        match t.tok {
            Tok::Punct(P::Semi | P::Comma) => {
                self.bump(t);
                Ok(())
            }
            _ => Err(self.unexpected(t, "`;` after assignment")),
        }
    }

    /// `NAME op expr`, `PROVIDE(NAME = expr)`, `PROVIDE_HIDDEN(…)`, `HIDDEN(…)`; the name and
    /// operator are read in `mode`, the value as an expression. No separator.
    fn assignment(&mut self, mode: Mode) -> PResult<Assignment<'a>> {
        let t = self.peek(mode)?;
        let start = t.start;
        let visibility = match t.tok {
            Tok::Kw(Kw::Provide) => AssignVisibility::Provide,
            Tok::Kw(Kw::ProvideHidden) => AssignVisibility::ProvideHidden,
            Tok::Kw(Kw::Hidden) => AssignVisibility::Hidden,
            _ => AssignVisibility::Plain,
        };
        if visibility != AssignVisibility::Plain {
            self.bump(t);
            let kw = match t.tok {
                Tok::Kw(kw) => kw.as_str(),
                _ => "PROVIDE",
            };
            self.expect(mode, P::LParen, format_args!("after `{kw}`"))?;
            let target = self.target(mode)?;
            let eq = self.peek(mode)?;
            if eq.tok != Tok::Punct(P::Eq) {
                let problem = self.unexpected(eq, format_args!("`=` after the symbol in `{kw}(`"));
                return Err(if assign_op(eq.tok).is_some() {
                    problem.with_help(format!("{kw} takes only a plain `=` assignment"))
                } else {
                    problem
                });
            }
            self.bump(eq);
            let value = self.mustbe_exp()?;
            self.expect(Mode::Expr, P::RParen, format_args!("to close `{kw}(`"))?;
            return Ok(Assignment {
                target,
                op: AssignOp::Set,
                value,
                visibility,
                span: Span::new(start, self.pos),
            });
        }
        let target = self.target(mode)?;
        let op_tok = self.peek(mode)?;
        let Some(op) = assign_op(op_tok.tok) else {
            if let (AssignTarget::Symbol(n), Tok::Punct(P::LParen)) = (target, op_tok.tok) {
                return Err(Problem::new(
                    n.span,
                    format!("unknown command `{}`", n.text),
                    "not a linker script command",
                ));
            }
            let mut problem = self.unexpected(op_tok, "an assignment operator such as `=`");
            if let AssignTarget::Symbol(n) = target
                && !n.quoted
                && n.text.contains('=')
            {
                problem = problem.with_help(format!(
                    "ld reads `{}` as one name here; put spaces around the operator",
                    n.text
                ));
            }
            return Err(problem);
        };
        self.bump(op_tok);
        let value = self.mustbe_exp()?;
        Ok(Assignment {
            target,
            op,
            value,
            visibility,
            span: Span::new(start, self.pos),
        })
    }

    fn target(&mut self, mode: Mode) -> PResult<AssignTarget<'a>> {
        let name = self.name(mode, "a symbol name")?;
        Ok(if name.text == "." {
            AssignTarget::Dot
        } else {
            AssignTarget::Symbol(name)
        })
    }

    /// `ASSERT(expr, message)`; ld lexes all of it in expression mode.
    fn assert_statement(&mut self) -> PResult<Assert<'a>> {
        let kw = self.expect_kw(Mode::Expr, Kw::Assert, format_args!(""))?;
        self.assert_rest(kw.start)
    }

    fn assert_rest(&mut self, start: usize) -> PResult<Assert<'a>> {
        self.expect(Mode::Expr, P::LParen, format_args!("after `ASSERT`"))?;
        let condition = self.expr()?;
        self.expect(
            Mode::Expr,
            P::Comma,
            format_args!("between the ASSERT condition and its message"),
        )?;
        let message = self.name(Mode::Expr, "the ASSERT message")?;
        self.expect(Mode::Expr, P::RParen, format_args!("to close `ASSERT(`"))?;
        Ok(Assert {
            condition,
            message,
            span: Span::new(start, self.pos),
        })
    }

    /// The entries of `INPUT(…)`, `GROUP(…)` or `AS_NEEDED(…)`, up to (not including) `)`.
    fn input_list(&mut self, opened: Span) -> PResult<Vec<InputFile<'a>>> {
        const M: Mode = Mode::InputList;
        self.enter(opened)?;
        let mut files = Vec::new();
        let mut after_comma = false;
        loop {
            let t = self.peek(M)?;
            match t.tok {
                Tok::Name | Tok::Quoted => {
                    self.bump(t);
                    files.push(InputFile::Path(self.name_of(t)));
                }
                Tok::Library => {
                    self.bump(t);
                    files.push(InputFile::Library(Name {
                        text: self.text(t),
                        quoted: false,
                        span: t.span(),
                    }));
                }
                Tok::Kw(Kw::AsNeeded) => {
                    self.bump(t);
                    self.expect(M, P::LParen, format_args!("after `AS_NEEDED`"))?;
                    let inner = self.input_list(t.span())?;
                    self.expect(M, P::RParen, format_args!("to close `AS_NEEDED(`"))?;
                    files.push(InputFile::AsNeeded(inner));
                }
                Tok::Punct(P::Comma) if !files.is_empty() && !after_comma => {
                    self.bump(t);
                    after_comma = true;
                    continue;
                }
                Tok::Punct(P::RParen) if !files.is_empty() && !after_comma => break,
                _ => return Err(self.unexpected(t, "a file name, `-lNAME` or `AS_NEEDED`")),
            }
            after_comma = false;
        }
        self.leave();
        Ok(files)
    }

    // ----- SECTIONS -----

    fn sections(&mut self, keyword: Token) -> PResult<Vec<SectionsItem<'a>>> {
        const S: Mode = Mode::Script;
        self.expect(S, P::LBrace, format_args!("after `SECTIONS`"))?;
        // Output sections are large, so they are gathered in fixed-size chunks and moved once
        // into a list of the exact length.
        let mut chunks: Vec<Vec<SectionsItem<'a>>> = Vec::new();
        let mut chunk = Vec::with_capacity(ITEM_CHUNK);
        loop {
            let t = self.peek(S)?;
            let start = t.start;
            let item = match t.tok {
                Tok::Punct(P::RBrace) => {
                    self.bump(t);
                    let total = chunks.iter().map(Vec::len).sum::<usize>() + chunk.len();
                    let mut items = Vec::with_capacity(total);
                    for c in chunks {
                        items.extend(c);
                    }
                    items.extend(chunk);
                    return Ok(items);
                }
                Tok::Kw(Kw::Entry) => {
                    self.bump(t);
                    let symbol = self.paren_name(S, "ENTRY", "a symbol name")?;
                    SectionsItem::Entry {
                        symbol,
                        span: Span::new(start, self.pos),
                    }
                }
                Tok::Kw(Kw::Assert) => SectionsItem::Assert(self.assert_statement()?),
                Tok::Kw(Kw::Provide | Kw::ProvideHidden | Kw::Hidden) => {
                    let a = self.assignment(S)?;
                    self.separator(S)?;
                    SectionsItem::Assignment(a)
                }
                Tok::Kw(Kw::Overlay) => {
                    self.bump(t);
                    SectionsItem::Overlay(self.overlay(start)?)
                }
                Tok::Kw(Kw::Include) => {
                    self.bump(t);
                    let file = self.name(S, "a file name after `INCLUDE`")?;
                    SectionsItem::Include {
                        file,
                        span: Span::new(start, self.pos),
                    }
                }
                Tok::Kw(Kw::Group) => {
                    return Err(self.unsupported(t, "`GROUP` inside SECTIONS (the svr3 form)"));
                }
                Tok::Name | Tok::Quoted => {
                    let saved = self.save();
                    let name = self.name(S, "an output section name")?;
                    // ld reads the token after the name before it knows whether this is an
                    // assignment or a section, so it is lexed in command mode.
                    let after = self.peek(S)?;
                    if assign_op(after.tok).is_some() {
                        self.restore(saved);
                        let a = self.assignment(S)?;
                        self.separator(S)?;
                        SectionsItem::Assignment(a)
                    } else {
                        self.sticky = Some(after);
                        SectionsItem::OutputSection(self.output_section(name, start)?)
                    }
                }
                Tok::Eof => {
                    return Err(Problem::new(
                        keyword.span(),
                        "expected `}` to close SECTIONS",
                        "this SECTIONS is never closed",
                    ));
                }
                Tok::Punct(P::Semi) => {
                    return Err(self
                        .unexpected(t, "an output section, an assignment or `}`")
                        .with_help("ld accepts `;` here only to end an assignment"));
                }
                _ => return Err(self.unexpected(t, "an output section, an assignment or `}`")),
            };
            if chunk.len() == ITEM_CHUNK {
                chunks.push(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(ITEM_CHUNK),
                ));
            }
            chunk.push(item);
        }
    }

    /// Whether the `(` at the lookahead opens a section type rather than an expression.
    fn paren_is_type(&mut self) -> PResult<bool> {
        const E: Mode = Mode::Expr;
        let saved = self.save();
        let open = self.next(E)?;
        let t = self.peek(E)?;
        let result = match t.tok {
            Tok::Kw(
                Kw::NoLoad
                | Kw::DSect
                | Kw::Copy
                | Kw::Info
                | Kw::Overlay
                | Kw::ReadOnly
                | Kw::Type,
            )
            | Tok::Punct(P::RParen) => Ok(true),
            Tok::Name if looks_like_type_keyword(self.text(t)) => {
                let text = self.text(t);
                self.bump(t);
                if self.peek(E)?.tok == Tok::Punct(P::RParen) {
                    Err(Problem::new(
                        t.span(),
                        format!("unknown output section type `{text}`"),
                        "not a section type",
                    )
                    .with_help(format!(
                        "the types are NOLOAD, DSECT, COPY, INFO, OVERLAY, READONLY and TYPE = n; \
                         ld would read `({text})` as an address, so write `{text}` without \
                         parentheses if an address is meant"
                    )))
                } else {
                    Ok(false)
                }
            }
            _ => Ok(false),
        };
        self.restore(saved);
        let _ = open;
        result
    }

    /// `( type )` after an output section's name or address; `None` for `()`.
    fn section_type(&mut self) -> PResult<Option<OutputSectionType<'a>>> {
        const E: Mode = Mode::Expr;
        self.expect(E, P::LParen, format_args!("before the section type"))?;
        let t = self.next(E)?;
        let kind = match t.tok {
            Tok::Punct(P::RParen) => return Ok(None),
            Tok::Kw(Kw::NoLoad) => OutputSectionType::NoLoad,
            Tok::Kw(Kw::DSect) => OutputSectionType::DSect,
            Tok::Kw(Kw::Copy) => OutputSectionType::Copy,
            Tok::Kw(Kw::Info) => OutputSectionType::Info,
            Tok::Kw(Kw::Overlay) => OutputSectionType::Overlay,
            Tok::Kw(Kw::ReadOnly) => {
                if self.eat(E, P::LParen)?.is_some() {
                    self.expect_kw(E, Kw::Type, format_args!("inside `READONLY(`"))?;
                    self.expect(E, P::Eq, format_args!("after `TYPE`"))?;
                    let value = self.expr()?;
                    self.expect(E, P::RParen, format_args!("to close `READONLY(`"))?;
                    OutputSectionType::Type {
                        read_only: true,
                        value,
                    }
                } else {
                    OutputSectionType::ReadOnly
                }
            }
            Tok::Kw(Kw::Type) => {
                self.expect(E, P::Eq, format_args!("after `TYPE`"))?;
                OutputSectionType::Type {
                    read_only: false,
                    value: self.expr()?,
                }
            }
            _ => return Err(self.unexpected(t, "an output section type")),
        };
        self.expect(E, P::RParen, format_args!("to close the section type"))?;
        Ok(Some(kind))
    }

    fn output_section(&mut self, name: Name<'a>, start: usize) -> PResult<OutputSection<'a>> {
        const E: Mode = Mode::Expr;
        const S: Mode = Mode::Script;
        let mut address = None;
        let mut kind = None;
        let t = self.peek(E)?;
        match t.tok {
            Tok::Punct(P::Colon) => {}
            Tok::Kw(Kw::Bind) => return Err(self.unsupported(t, "`BIND` (the svr3 form)")),
            Tok::Punct(P::LBrace) => {
                return Err(self
                    .unexpected(t, format_args!("`:` after output section `{}`", name.text))
                    .with_help("an output section is written `NAME [address] : { … }`"));
            }
            Tok::Punct(P::LParen) if self.paren_is_type()? => kind = self.section_type()?,
            _ => {
                address = Some(self.expr()?);
                if self.peek(E)?.tok == Tok::Punct(P::LParen) {
                    kind = self.section_type()?;
                }
            }
        }
        let colon = self.peek(E)?;
        if colon.tok != Tok::Punct(P::Colon) {
            let mut problem = self.unexpected(
                colon,
                format_args!("`:` after output section `{}`", name.text),
            );
            if colon.tok == Tok::Punct(P::LBrace) || matches!(colon.tok, Tok::Name) {
                problem =
                    problem.with_help("an output section is written `NAME [address] : { … }`");
            }
            return Err(problem);
        }
        self.bump(colon);
        let lma = self.keyword_paren_expr(Kw::At)?;
        let align = self.keyword_paren_expr(Kw::Align)?;
        let align_with_input = self.eat_kw(E, Kw::AlignWithInput)?.is_some();
        let subalign = self.keyword_paren_expr(Kw::SubAlign)?;
        let t = self.peek(E)?;
        let constraint = match t.tok {
            Tok::Kw(Kw::OnlyIfRo) => Some(Constraint::OnlyIfRo),
            Tok::Kw(Kw::OnlyIfRw) => Some(Constraint::OnlyIfRw),
            Tok::Kw(Kw::Special) => Some(Constraint::Special),
            _ => None,
        };
        if constraint.is_some() {
            self.bump(t);
        }
        let open = self.peek(E)?;
        if open.tok != Tok::Punct(P::LBrace) {
            return Err(self.unexpected(
                open,
                format_args!("`{{` to open the body of output section `{}`", name.text),
            ));
        }
        self.bump(open);
        let body = self.section_body(open)?;
        let region = match self.eat(S, P::Gt)? {
            Some(_) => Some(self.name(S, "a memory region name after `>`")?),
            None => None,
        };
        let lma_region = match self.eat_kw(S, Kw::At)? {
            Some(_) => {
                self.expect(
                    S,
                    P::Gt,
                    format_args!("after `AT` (an output section's load region is `AT> region`)"),
                )?;
                Some(self.name(S, "a memory region name after `AT>`")?)
            }
            None => None,
        };
        let phdrs = self.phdr_list()?;
        let fill = self.fill()?;
        self.eat(S, P::Comma)?;
        Ok(OutputSection {
            name,
            address,
            kind,
            lma,
            align,
            align_with_input,
            subalign,
            constraint,
            body,
            region,
            lma_region,
            phdrs,
            fill,
            span: Span::new(start, self.pos),
        })
    }

    /// `KW ( expr )` in expression mode when the lookahead is `kw`.
    fn keyword_paren_expr(&mut self, kw: Kw) -> PResult<Option<Expr<'a>>> {
        const E: Mode = Mode::Expr;
        if self.eat_kw(E, kw)?.is_none() {
            return Ok(None);
        }
        self.expect(E, P::LParen, format_args!("after `{}`", kw.as_str()))?;
        let value = self.expr()?;
        self.expect(E, P::RParen, format_args!("to close `{}(`", kw.as_str()))?;
        Ok(Some(value))
    }

    /// `:phdr :phdr …` after an output section or overlay.
    fn phdr_list(&mut self) -> PResult<Vec<Name<'a>>> {
        let mut phdrs = Vec::new();
        while self.eat(Mode::Script, P::Colon)?.is_some() {
            phdrs.push(self.name(Mode::Script, "a program header name after `:`")?);
        }
        Ok(phdrs)
    }

    /// `= fill` after an output section or overlay; a name read after the value is re-read.
    fn fill(&mut self) -> PResult<Option<Expr<'a>>> {
        if self.eat(Mode::Script, P::Eq)?.is_none() {
            return Ok(None);
        }
        let value = self.mustbe_exp()?;
        self.backup_name();
        Ok(Some(value))
    }

    /// Statements inside an output section's braces, through the closing `}`.
    fn section_body(&mut self, open: Token) -> PResult<Vec<SectionStatement<'a>>> {
        const W: Mode = Mode::Wild;
        // Bodies do not nest, so the scratch stack is empty here.
        let mut scratch = std::mem::take(&mut self.statements);
        loop {
            let t = self.peek(W)?;
            let start = t.start;
            let statement = match t.tok {
                Tok::Punct(P::RBrace) => {
                    self.bump(t);
                    let mut body = Vec::with_capacity(scratch.len());
                    body.append(&mut scratch);
                    self.statements = scratch;
                    return Ok(body);
                }
                Tok::Punct(P::Semi) => {
                    self.bump(t);
                    continue;
                }
                Tok::Kw(Kw::Assert) => {
                    self.bump(t);
                    let a = self.assert_rest(start)?;
                    let sep = self.peek(Mode::Expr)?;
                    if !matches!(sep.tok, Tok::Punct(P::Semi | P::Comma)) {
                        return Err(self
                            .unexpected(sep, "`;` after ASSERT inside an output section")
                            .with_help(
                                "inside an output section ld requires `;` or `,` after ASSERT",
                            ));
                    }
                    self.bump(sep);
                    SectionStatement::Assert(a)
                }
                Tok::Kw(Kw::Provide | Kw::ProvideHidden | Kw::Hidden) => {
                    let a = self.assignment(W)?;
                    self.separator(W)?;
                    SectionStatement::Assignment(a)
                }
                Tok::Kw(Kw::CreateObjectSymbols) => {
                    self.bump(t);
                    SectionStatement::CreateObjectSymbols(t.span())
                }
                Tok::Kw(Kw::Constructors) => {
                    self.bump(t);
                    SectionStatement::Constructors {
                        sorted: false,
                        span: t.span(),
                    }
                }
                Tok::Kw(Kw::Sort | Kw::SortByName) if self.sorted_constructors()? => {
                    SectionStatement::Constructors {
                        sorted: true,
                        span: Span::new(start, self.pos),
                    }
                }
                Tok::Kw(kw @ (Kw::Quad | Kw::Squad | Kw::Long | Kw::Short | Kw::Byte)) => {
                    self.bump(t);
                    let size = match kw {
                        Kw::Quad => DataSize::Quad,
                        Kw::Squad => DataSize::Squad,
                        Kw::Long => DataSize::Long,
                        Kw::Short => DataSize::Short,
                        _ => DataSize::Byte,
                    };
                    self.expect(W, P::LParen, format_args!("after `{}`", kw.as_str()))?;
                    let value = self.mustbe_exp()?;
                    self.expect(
                        Mode::Expr,
                        P::RParen,
                        format_args!("to close `{}(`", kw.as_str()),
                    )?;
                    SectionStatement::Data {
                        size,
                        value,
                        span: Span::new(start, self.pos),
                    }
                }
                Tok::Kw(Kw::Fill) => {
                    self.bump(t);
                    self.expect(W, P::LParen, format_args!("after `FILL`"))?;
                    let value = self.mustbe_exp()?;
                    self.expect(Mode::Expr, P::RParen, format_args!("to close `FILL(`"))?;
                    SectionStatement::Fill {
                        value,
                        span: Span::new(start, self.pos),
                    }
                }
                Tok::Kw(Kw::Include) => {
                    self.bump(t);
                    let file = self.name(W, "a file name after `INCLUDE`")?;
                    SectionStatement::Include {
                        file,
                        span: Span::new(start, self.pos),
                    }
                }
                Tok::Kw(Kw::Keep) => {
                    self.bump(t);
                    self.expect(W, P::LParen, format_args!("after `KEEP`"))?;
                    let mut desc = self.input_section(start, true)?;
                    self.expect(W, P::RParen, format_args!("to close `KEEP(`"))?;
                    desc.span = Span::new(start, self.pos);
                    SectionStatement::Input(desc)
                }
                Tok::Kw(
                    Kw::InputSectionFlags
                    | Kw::ExcludeFile
                    | Kw::Sort
                    | Kw::SortByName
                    | Kw::SortByAlignment
                    | Kw::SortByInitPriority
                    | Kw::SortNone
                    | Kw::Reverse,
                ) => SectionStatement::Input(self.input_section(start, false)?),
                Tok::Name | Tok::Quoted => {
                    let saved = self.save();
                    self.bump(t);
                    let after = self.peek(W)?;
                    self.restore(saved);
                    if assign_op(after.tok).is_some() {
                        let a = self.assignment(W)?;
                        self.separator(W)?;
                        SectionStatement::Assignment(a)
                    } else {
                        SectionStatement::Input(self.input_section(start, false)?)
                    }
                }
                Tok::Punct(P::LBracket) => {
                    return Err(self.unsupported(t, "the `[ sections ]` input form"));
                }
                Tok::Eof => {
                    return Err(Problem::new(
                        open.span(),
                        "expected `}` to close the output section",
                        "this `{` is never closed",
                    ));
                }
                _ => {
                    return Err(
                        self.unexpected(t, "an input section description, an assignment or `}`")
                    );
                }
            };
            scratch.push(statement);
        }
    }

    /// At `SORT`: whether this is `SORT(CONSTRUCTORS)`; consumes it if so.
    fn sorted_constructors(&mut self) -> PResult<bool> {
        const W: Mode = Mode::Wild;
        let saved = self.save();
        self.next(W)?;
        if self.eat(W, P::LParen)?.is_some()
            && self.eat_kw(W, Kw::Constructors)?.is_some()
            && self.eat(W, P::RParen)?.is_some()
        {
            return Ok(true);
        }
        self.restore(saved);
        Ok(false)
    }

    /// `[INPUT_SECTION_FLAGS(…)] file-spec [( section-spec … )]` (inside KEEP when `keep`).
    fn input_section(&mut self, start: usize, keep: bool) -> PResult<InputSectionDesc<'a>> {
        const W: Mode = Mode::Wild;
        let mut flags = Vec::new();
        if let Some(t) = self.eat_kw(W, Kw::InputSectionFlags)? {
            self.expect(W, P::LParen, format_args!("after `INPUT_SECTION_FLAGS`"))?;
            loop {
                let name = self.name(W, "a section flag such as `SHF_WRITE`")?;
                let (negated, flag) = match name.text.strip_prefix('!') {
                    Some(rest) => (true, Name { text: rest, ..name }),
                    None => (false, name),
                };
                if flag.text.is_empty() {
                    return Err(Problem::new(
                        name.span,
                        "expected a section flag after `!`",
                        "empty flag",
                    ));
                }
                flags.push(SectionFlagTest { negated, flag });
                if self.eat(W, P::Amp)?.is_none() {
                    break;
                }
            }
            self.expect(W, P::RParen, format_args!("to close `INPUT_SECTION_FLAGS(`"))
                .map_err(|e| e.with_help(format!("flags are joined with `&`, as in INPUT_SECTION_FLAGS(SHF_ALLOC & !SHF_WRITE) (opened at byte {})", t.start)))?;
        }
        let t = self.peek(W)?;
        let file = match sort_key(t.tok) {
            Some(key @ (SortKey::Name | SortKey::None)) => {
                self.bump(t);
                self.expect(W, P::LParen, format_args!("after `{}`", sort_name(key)))?;
                let (exclude, pattern) = self.maybe_exclude()?;
                self.expect(W, P::RParen, format_args!("to close `{}(`", sort_name(key)))?;
                FileSpec {
                    exclude,
                    pattern,
                    sort: vec![key],
                }
            }
            Some(key) => {
                return Err(Problem::new(
                    t.span(),
                    format!("`{}` cannot sort input files", sort_name(key)),
                    "only SORT, SORT_BY_NAME and SORT_NONE apply to file names",
                )
                .with_help("put the sort inside the parentheses, around the section pattern"));
            }
            None => {
                let (exclude, pattern) = self.maybe_exclude()?;
                FileSpec {
                    exclude,
                    pattern,
                    sort: Vec::new(),
                }
            }
        };
        let mut sections = Vec::with_capacity(2);
        if self.eat(W, P::LParen)?.is_some() {
            loop {
                sections.push(self.section_spec()?);
                if self.eat(W, P::RParen)?.is_some() {
                    break;
                }
            }
        } else if !file.exclude.is_empty() || !file.sort.is_empty() {
            let t = self.peek(W)?;
            return Err(self.unexpected(t, "`(` and the section patterns for this file pattern"));
        }
        Ok(InputSectionDesc {
            keep,
            flags,
            file,
            sections,
            span: Span::new(start, self.pos),
        })
    }

    /// `[EXCLUDE_FILE(pattern …)] pattern`.
    fn maybe_exclude(&mut self) -> PResult<(Vec<Pattern<'a>>, Pattern<'a>)> {
        const W: Mode = Mode::Wild;
        let mut exclude = Vec::new();
        if self.eat_kw(W, Kw::ExcludeFile)?.is_some() {
            self.expect(W, P::LParen, format_args!("after `EXCLUDE_FILE`"))?;
            exclude.push(self.pattern("a file pattern to exclude")?);
            while self.eat(W, P::RParen)?.is_none() {
                exclude.push(self.pattern("a file pattern or `)`")?);
            }
        }
        let what = if exclude.is_empty() {
            "a file or section pattern"
        } else {
            "the pattern that EXCLUDE_FILE applies to"
        };
        Ok((exclude, self.pattern(what)?))
    }

    /// One section pattern with its sort wrappers.
    fn section_spec(&mut self) -> PResult<SectionSpec<'a>> {
        const W: Mode = Mode::Wild;
        let first = self.peek(W)?;
        let start = first.start;
        if matches!(first.tok, Tok::Name | Tok::Quoted) {
            // The usual plain pattern: no sort and no EXCLUDE_FILE.
            self.bump(first);
            let n = self.name_of(first);
            return Ok(SectionSpec {
                exclude: Vec::new(),
                pattern: Pattern {
                    text: n.text,
                    quoted: n.quoted,
                    span: n.span,
                },
                sort: Vec::new(),
                span: n.span,
            });
        }
        let mut sort = Vec::new();
        loop {
            let t = self.peek(W)?;
            let Some(key) = sort_key(t.tok) else {
                break;
            };
            self.bump(t);
            sort.push(key);
            if sort.len() > 3 {
                return Err(Problem::new(
                    t.span(),
                    "sorts nested too deeply",
                    "one sort too many",
                ));
            }
            self.expect(W, P::LParen, format_args!("after `{}`", sort_name(key)))?;
        }
        let (exclude, pattern) = self.maybe_exclude()?;
        for key in sort.iter().rev() {
            self.expect(
                W,
                P::RParen,
                format_args!("to close `{}(`", sort_name(*key)),
            )?;
        }
        if !valid_section_sort(&sort) {
            let written = sort
                .iter()
                .map(|k| format!("{}(", sort_name(*k)))
                .collect::<String>();
            return Err(Problem::new(
                Span::new(start, self.pos),
                format!("invalid sort nesting `{written}…`"),
                "ld does not accept this combination",
            )
            .with_help(
                "use one sort keyword, or SORT_BY_NAME and SORT_BY_ALIGNMENT nested in each other",
            ));
        }
        Ok(SectionSpec {
            exclude,
            pattern,
            sort,
            span: Span::new(start, self.pos),
        })
    }

    /// After `OVERLAY`: `[start] : [NOCROSSREFS] [AT(lma)] [SUBALIGN(a)] { sections } trailers`.
    fn overlay(&mut self, start: usize) -> PResult<Overlay<'a>> {
        const E: Mode = Mode::Expr;
        const S: Mode = Mode::Script;
        let address = if self.peek(E)?.tok == Tok::Punct(P::Colon) {
            None
        } else {
            Some(self.expr()?)
        };
        self.expect(E, P::Colon, format_args!("after the OVERLAY start address"))?;
        let no_cross_refs = self.eat_kw(E, Kw::NoCrossRefs)?.is_some();
        let lma = self.keyword_paren_expr(Kw::At)?;
        let subalign = self.keyword_paren_expr(Kw::SubAlign)?;
        let open = self.expect(E, P::LBrace, format_args!("to open the OVERLAY body"))?;
        let mut sections = Vec::new();
        loop {
            let t = self.peek(S)?;
            match t.tok {
                Tok::Punct(P::RBrace) => {
                    self.bump(t);
                    break;
                }
                Tok::Name | Tok::Quoted => {
                    let name = self.name(S, "an overlay section name")?;
                    let body_open = self.expect(
                        Mode::Wild,
                        P::LBrace,
                        format_args!("after overlay section `{}`", name.text),
                    )?;
                    let body = self.section_body(body_open)?;
                    let phdrs = self.phdr_list()?;
                    let fill = self.fill()?;
                    self.eat(S, P::Comma)?;
                    sections.push(OverlaySection {
                        name,
                        body,
                        phdrs,
                        fill,
                        span: Span::new(t.start, self.pos),
                    });
                }
                Tok::Eof => {
                    return Err(Problem::new(
                        open.span(),
                        "expected `}` to close the OVERLAY",
                        "this `{` is never closed",
                    ));
                }
                _ => return Err(self.unexpected(t, "an overlay section name or `}`")),
            }
        }
        let region = match self.eat(S, P::Gt)? {
            Some(_) => Some(self.name(S, "a memory region name after `>`")?),
            None => None,
        };
        let lma_region = match self.eat_kw(S, Kw::At)? {
            Some(_) => {
                self.expect(S, P::Gt, format_args!("after `AT`"))?;
                Some(self.name(S, "a memory region name after `AT>`")?)
            }
            None => None,
        };
        let phdrs = self.phdr_list()?;
        let fill = self.fill()?;
        self.eat(S, P::Comma)?;
        Ok(Overlay {
            address,
            no_cross_refs,
            lma,
            subalign,
            sections,
            region,
            lma_region,
            phdrs,
            fill,
            span: Span::new(start, self.pos),
        })
    }

    // ----- MEMORY and PHDRS -----

    fn memory(&mut self) -> PResult<Vec<MemoryRegion<'a>>> {
        const S: Mode = Mode::Script;
        self.expect(S, P::LBrace, format_args!("after `MEMORY`"))?;
        let mut regions = Vec::new();
        loop {
            let t = self.peek(S)?;
            match t.tok {
                Tok::Punct(P::RBrace) => {
                    self.bump(t);
                    return Ok(regions);
                }
                Tok::Punct(P::Comma) if !regions.is_empty() => {
                    self.bump(t);
                    let next = self.peek(S)?;
                    if !matches!(next.tok, Tok::Name | Tok::Quoted) {
                        return Err(self.unexpected(next, "a memory region after `,`"));
                    }
                }
                Tok::Kw(Kw::Include) => {
                    return Err(self.unsupported(t, "`INCLUDE` inside MEMORY"));
                }
                Tok::Name | Tok::Quoted => regions.push(self.memory_region()?),
                _ => return Err(self.unexpected(t, "a memory region name or `}`")),
            }
        }
    }

    fn memory_region(&mut self) -> PResult<MemoryRegion<'a>> {
        const S: Mode = Mode::Script;
        let name = self.name(S, "a memory region name")?;
        let mut attributes = None;
        if self.eat(S, P::LParen)?.is_some() {
            let first = self.peek(S)?;
            let mut end = first.start;
            loop {
                let t = self.next(S)?;
                match t.tok {
                    Tok::Punct(P::Bang) => {
                        let n = self.name(S, "attribute letters after `!`")?;
                        end = n.span.end();
                    }
                    Tok::Name | Tok::Quoted => end = t.end(),
                    Tok::Punct(P::RParen) if end > first.start => break,
                    _ => return Err(self.unexpected(t, "memory attributes such as `rwx` or `!w`")),
                }
            }
            attributes = Some(&self.src[first.start..end]);
        }
        self.expect(
            S,
            P::Colon,
            format_args!("after memory region `{}`", name.text),
        )?;
        let origin_kw = self.peek(S)?;
        if !matches!(
            origin_kw.tok,
            Tok::Kw(Kw::Origin | Kw::OriginO | Kw::OriginOrg)
        ) {
            return Err(self.unexpected(origin_kw, "`ORIGIN` (or `org`, `o`)"));
        }
        self.bump(origin_kw);
        self.expect(S, P::Eq, format_args!("after `ORIGIN`"))?;
        let origin = self.mustbe_exp()?;
        self.eat(S, P::Comma)?;
        let length_kw = self.peek(S)?;
        if !matches!(
            length_kw.tok,
            Tok::Kw(Kw::Length | Kw::LengthL | Kw::LengthLen)
        ) {
            let problem = self.unexpected(length_kw, "`LENGTH` (or `len`, `l`)");
            let short_length =
                length_kw.tok == Tok::Name && matches!(self.text(length_kw), "l" | "len");
            return Err(if short_length {
                problem.with_help(
                    "ld reads `l` and `len` as LENGTH only after a comma; write `, LENGTH`",
                )
            } else {
                problem
            });
        }
        self.bump(length_kw);
        self.expect(S, P::Eq, format_args!("after `LENGTH`"))?;
        let length = self.mustbe_exp()?;
        self.backup_name();
        Ok(MemoryRegion {
            span: Span::new(name.span.start(), self.pos),
            name,
            attributes,
            origin,
            length,
        })
    }

    fn phdrs(&mut self) -> PResult<Vec<Phdr<'a>>> {
        const S: Mode = Mode::Script;
        const E: Mode = Mode::Expr;
        self.expect(S, P::LBrace, format_args!("after `PHDRS`"))?;
        let mut phdrs = Vec::new();
        loop {
            let t = self.peek(S)?;
            match t.tok {
                Tok::Punct(P::RBrace) => {
                    self.bump(t);
                    return Ok(phdrs);
                }
                Tok::Name | Tok::Quoted => {}
                _ => return Err(self.unexpected(t, "a program header name or `}`")),
            }
            let name = self.name(S, "a program header name")?;
            let type_expr = self.expr()?;
            let kind = match type_expr.kind {
                ExprKind::Symbol(n) => {
                    if !PHDR_TYPES.contains(&n.text) {
                        return Err(Problem::new(
                            n.span,
                            format!("unknown phdr type `{}`", n.text),
                            "not a program header type",
                        )
                        .with_help("use PT_LOAD, PT_NOTE, PT_TLS, PT_GNU_STACK, … or an integer"));
                    }
                    PhdrType::Named(n)
                }
                _ => PhdrType::Value(type_expr),
            };
            let mut phdr = Phdr {
                name,
                kind,
                file_header: false,
                program_headers: false,
                at: None,
                flags: None,
                span: name.span,
            };
            loop {
                let q = self.peek(E)?;
                match q.tok {
                    Tok::Punct(P::Semi) => {
                        self.bump(q);
                        break;
                    }
                    Tok::Kw(Kw::At) => {
                        self.bump(q);
                        self.expect(E, P::LParen, format_args!("after `AT`"))?;
                        let at = self.expr()?;
                        self.expect(E, P::RParen, format_args!("to close `AT(`"))?;
                        // ld applies the qualifiers right to left: the first one written wins.
                        phdr.at.get_or_insert(at);
                    }
                    Tok::Name | Tok::Quoted => {
                        let word = self.text(q);
                        self.bump(q);
                        let value = if self.eat(E, P::LParen)?.is_some() {
                            let v = self.expr()?;
                            self.expect(E, P::RParen, format_args!("to close `{word}(`"))?;
                            Some(v)
                        } else {
                            None
                        };
                        match (word, value) {
                            ("FILEHDR", None) => phdr.file_header = true,
                            ("PHDRS", None) => phdr.program_headers = true,
                            ("FLAGS", Some(v)) => {
                                phdr.flags.get_or_insert(v);
                            }
                            ("FLAGS", None) => {
                                return Err(Problem::new(
                                    q.span(),
                                    "`FLAGS` needs a value, as in FLAGS(5)",
                                    "no value",
                                ));
                            }
                            ("FILEHDR" | "PHDRS", Some(_)) => {
                                return Err(Problem::new(
                                    Span::new(q.start, self.pos),
                                    format!("`{word}` takes no value"),
                                    "unexpected value",
                                ));
                            }
                            _ => {
                                return Err(Problem::new(
                                    q.span(),
                                    format!("PHDRS syntax error at `{word}`"),
                                    "not a program header qualifier",
                                )
                                .with_help(
                                    "the qualifiers are FILEHDR, PHDRS, AT(addr) and FLAGS(n)",
                                ));
                            }
                        }
                    }
                    _ => return Err(self.unexpected(q, "`;` after the program header")),
                }
            }
            phdr.span = Span::new(name.span.start(), self.pos);
            phdrs.push(phdr);
        }
    }

    // ----- expressions -----

    /// An expression whose following token stays as lookahead for the caller (ld's
    /// `mustbe_exp`: the lexer returns to the previous mode only after that token is read).
    fn mustbe_exp(&mut self) -> PResult<Expr<'a>> {
        let e = self.expr()?;
        let next = self.peek(Mode::Expr)?;
        self.sticky = Some(next);
        Ok(e)
    }

    fn expr(&mut self) -> PResult<Expr<'a>> {
        const E: Mode = Mode::Expr;
        let first = self.peek(E)?;
        if self.stands_alone(first)?
            && let Some(e) = self.atom(first)
        {
            self.bump(first);
            return Ok(e);
        }
        self.enter(first.span())?;
        let condition = self.binary(1)?;
        let t = self.peek(E)?;
        let result = if t.tok == Tok::Punct(P::Question) {
            self.bump(t);
            let then = self.expr()?;
            self.expect(E, P::Colon, format_args!("in the conditional expression"))?;
            let otherwise = self.expr()?;
            let span = condition.span.join(otherwise.span);
            Expr {
                kind: ExprKind::Conditional(
                    Box::new(condition),
                    Box::new(then),
                    Box::new(otherwise),
                ),
                span,
            }
        } else {
            condition
        };
        self.leave();
        Ok(result)
    }

    fn binary(&mut self, min_precedence: u8) -> PResult<Expr<'a>> {
        let t = self.peek(Mode::Expr)?;
        // Most operands are a lone number or name: take them without the unary and primary
        // layers.
        let mut lhs = match self.atom(t) {
            Some(e) => {
                self.bump(t);
                e
            }
            None => self.unary()?,
        };
        loop {
            let t = self.peek(Mode::Expr)?;
            let Some(op) = binary_op(t.tok) else {
                return Ok(lhs);
            };
            let precedence = op.precedence();
            if precedence < min_precedence {
                return Ok(lhs);
            }
            self.bump(t);
            let rhs = self.binary(precedence + 1)?;
            let span = lhs.span.join(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                span,
            };
        }
    }

    fn unary(&mut self) -> PResult<Expr<'a>> {
        let t = self.peek(Mode::Expr)?;
        let op = match t.tok {
            Tok::Punct(P::Minus) => UnaryOp::Neg,
            Tok::Punct(P::Bang) => UnaryOp::Not,
            Tok::Punct(P::Tilde) => UnaryOp::BitNot,
            Tok::Punct(P::Plus) => {
                // ld drops unary plus.
                self.bump(t);
                self.enter(t.span())?;
                let inner = self.unary()?;
                self.leave();
                return Ok(inner);
            }
            _ => return self.primary(),
        };
        self.bump(t);
        self.enter(t.span())?;
        let operand = self.unary()?;
        self.leave();
        let span = t.span().join(operand.span);
        Ok(Expr {
            kind: ExprKind::Unary(op, Box::new(operand)),
            span,
        })
    }

    fn primary(&mut self) -> PResult<Expr<'a>> {
        const E: Mode = Mode::Expr;
        let t = self.peek(E)?;
        let start = t.start;
        if let Some(e) = self.atom(t) {
            self.bump(t);
            return Ok(e);
        }
        let kind = match t.tok {
            Tok::Punct(P::LParen) => {
                self.bump(t);
                let inner = self.expr()?;
                self.expect(E, P::RParen, format_args!("to close `(`"))?;
                return Ok(Expr {
                    kind: inner.kind,
                    span: Span::new(start, self.pos),
                });
            }
            Tok::Kw(kw) => {
                self.bump(t);
                self.builtin(t, kw)?
            }
            _ => return Err(self.unexpected(t, "an expression")),
        };
        Ok(Expr {
            kind,
            span: Span::new(start, self.pos),
        })
    }

    /// Whether `first` is a number or name that is the whole expression: the token after it
    /// cannot continue one. Most expressions in kernel scripts are a lone `.`, symbol or number.
    fn stands_alone(&mut self, first: Token) -> PResult<bool> {
        if !matches!(first.tok, Tok::Int(_) | Tok::Name | Tok::Quoted) || self.depth >= MAX_NESTING
        {
            return Ok(false);
        }
        let saved = self.save();
        self.bump(first);
        let next = self.peek(Mode::Expr);
        self.restore(saved);
        let next = next?.tok;
        Ok(binary_op(next).is_none() && next != Tok::Punct(P::Question))
    }

    /// The expression a number or name token makes on its own (not consumed).
    #[inline]
    fn atom(&self, t: Token) -> Option<Expr<'a>> {
        let kind = match t.tok {
            Tok::Int(_) => ExprKind::Number {
                value: t.value(self.src),
                text: &self.src[t.start..t.end()],
            },
            Tok::Name | Tok::Quoted if self.text(t) == "." => ExprKind::Dot,
            Tok::Name | Tok::Quoted => ExprKind::Symbol(self.name_of(t)),
            _ => return None,
        };
        Some(Expr {
            kind,
            span: t.span(),
        })
    }

    fn builtin(&mut self, t: Token, kw: Kw) -> PResult<ExprKind<'a>> {
        const E: Mode = Mode::Expr;
        let call = |builtin| move |args| ExprKind::Call(builtin, args);
        Ok(match kw {
            Kw::SizeofHeaders => ExprKind::SizeofHeaders,
            Kw::Addr => ExprKind::SectionQuery(SectionQuery::Addr, self.script_name(kw)?),
            Kw::Sizeof => ExprKind::SectionQuery(SectionQuery::Sizeof, self.script_name(kw)?),
            Kw::LoadAddr => ExprKind::SectionQuery(SectionQuery::LoadAddr, self.script_name(kw)?),
            Kw::AlignOf => ExprKind::SectionQuery(SectionQuery::AlignOf, self.script_name(kw)?),
            Kw::Origin => ExprKind::RegionQuery(RegionQuery::Origin, self.script_name(kw)?),
            Kw::Length => ExprKind::RegionQuery(RegionQuery::Length, self.script_name(kw)?),
            Kw::Defined => ExprKind::Defined(self.paren_name(E, "DEFINED", "a symbol name")?),
            Kw::Constant => {
                let name = self.paren_name(E, "CONSTANT", "MAXPAGESIZE or COMMONPAGESIZE")?;
                ExprKind::Constant(match name.text {
                    "MAXPAGESIZE" => ConstantName::MaxPageSize,
                    "COMMONPAGESIZE" => ConstantName::CommonPageSize,
                    other => {
                        return Err(Problem::new(
                            name.span,
                            format!("unknown constant `{other}`"),
                            "not a CONSTANT name",
                        )
                        .with_help("CONSTANT knows MAXPAGESIZE and COMMONPAGESIZE"));
                    }
                })
            }
            Kw::SegmentStart => {
                // ld reads the segment name in command mode.
                self.expect(
                    Mode::Script,
                    P::LParen,
                    format_args!("after `SEGMENT_START`"),
                )?;
                let segment = self.name(Mode::Script, "a segment name")?;
                self.expect(E, P::Comma, format_args!("after the segment name"))?;
                let default = self.expr()?;
                self.expect(E, P::RParen, format_args!("to close `SEGMENT_START(`"))?;
                ExprKind::SegmentStart(segment, Box::new(default))
            }
            Kw::Assert => ExprKind::Assert(Box::new(self.assert_rest(t.start)?)),
            Kw::Absolute => call(Builtin::Absolute)(self.args(kw, 1, 1)?),
            Kw::Align => call(Builtin::Align)(self.args(kw, 1, 2)?),
            Kw::Block => call(Builtin::Block)(self.args(kw, 1, 1)?),
            Kw::DataSegmentAlign => call(Builtin::DataSegmentAlign)(self.args(kw, 2, 2)?),
            Kw::DataSegmentRelroEnd => call(Builtin::DataSegmentRelroEnd)(self.args(kw, 2, 2)?),
            Kw::DataSegmentEnd => call(Builtin::DataSegmentEnd)(self.args(kw, 1, 1)?),
            Kw::Log2Ceil => call(Builtin::Log2Ceil)(self.args(kw, 1, 1)?),
            Kw::Max => call(Builtin::Max)(self.args(kw, 2, 2)?),
            Kw::Min => call(Builtin::Min)(self.args(kw, 2, 2)?),
            Kw::Next => call(Builtin::Next)(self.args(kw, 1, 1)?),
            _ => {
                return Err(self
                    .unexpected(t, "an expression")
                    .with_help(format!("`{}` cannot start an expression", kw.as_str())));
            }
        })
    }

    /// `( NAME )` of ADDR, SIZEOF, ORIGIN, …: ld reads all three tokens in command mode.
    fn script_name(&mut self, kw: Kw) -> PResult<Name<'a>> {
        let what = match kw {
            Kw::Origin | Kw::Length => "a memory region name",
            _ => "an output section name",
        };
        self.paren_name(Mode::Script, kw.as_str(), what)
    }

    /// `( expr [, expr] )` with between `min` and `max` arguments.
    fn args(&mut self, kw: Kw, min: usize, max: usize) -> PResult<Vec<Expr<'a>>> {
        const E: Mode = Mode::Expr;
        let name = kw.as_str();
        self.expect(E, P::LParen, format_args!("after `{name}`"))?;
        let mut args = Vec::with_capacity(max);
        args.push(self.expr()?);
        while args.len() < max {
            if args.len() >= min {
                if self.eat(E, P::Comma)?.is_none() {
                    break;
                }
            } else {
                self.expect(
                    E,
                    P::Comma,
                    format_args!("between the arguments of `{name}`"),
                )
                .map_err(|e| e.with_help(format!("`{name}` takes {min} arguments")))?;
            }
            args.push(self.expr()?);
        }
        self.expect(E, P::RParen, format_args!("to close `{name}(`"))?;
        Ok(args)
    }
}
