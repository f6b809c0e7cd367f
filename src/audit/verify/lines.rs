//! The lines of a trail's files, in order, with lookahead.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

/// One line of one file.
#[derive(Debug)]
pub struct Line {
    /// Index of the file in the trail.
    pub file: usize,
    /// 1-based line number within its file.
    pub number: u64,
    /// The bytes, without the newline.
    pub bytes: Vec<u8>,
    /// False for a last line that ends without a newline.
    pub complete: bool,
}

/// Reads a trail's files one line at a time; never holds more than the
/// lines looked ahead at.
pub struct Lines {
    files: Vec<PathBuf>,
    next_file: usize,
    reader: Option<(usize, BufReader<File>)>,
    number: u64,
    ahead: VecDeque<Line>,
}

impl Lines {
    /// Lines of `files`, read in this order.
    pub fn new(files: Vec<PathBuf>) -> Self {
        Self {
            files,
            next_file: 0,
            reader: None,
            number: 0,
            ahead: VecDeque::new(),
        }
    }

    /// The file at `index`.
    pub fn file(&self, index: usize) -> &PathBuf {
        &self.files[index]
    }

    /// The next line, or `None` after the last file's last line.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        match self.ahead.pop_front() {
            Some(line) => Ok(Some(line)),
            None => self.read(),
        }
    }

    /// The line `k` places ahead of the next one (0 is the next one).
    pub fn peek(&mut self, k: usize) -> std::io::Result<Option<&Line>> {
        while self.ahead.len() <= k {
            match self.read()? {
                Some(line) => self.ahead.push_back(line),
                None => return Ok(None),
            }
        }
        Ok(self.ahead.get(k))
    }

    fn read(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            if self.reader.is_none() {
                let Some(path) = self.files.get(self.next_file) else {
                    return Ok(None);
                };
                let file = File::open(path)?;
                self.reader = Some((self.next_file, BufReader::new(file)));
                self.next_file += 1;
                self.number = 0;
            }
            let (index, reader) =
                self.reader.as_mut().expect("a reader was just opened");
            let mut bytes = Vec::new();
            if reader.read_until(b'\n', &mut bytes)? == 0 {
                self.reader = None;
                continue;
            }
            self.number += 1;
            let complete = bytes.last() == Some(&b'\n');
            if complete {
                bytes.pop();
            }
            return Ok(Some(Line {
                file: *index,
                number: self.number,
                bytes,
                complete,
            }));
        }
    }
}
